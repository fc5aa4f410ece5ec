"""The embedded WFP engine model.

``model.Engine`` ties the parts together: ``clock`` (virtual time and the
seeded scheduler), ``bfe`` (sessions, transactions, objects), ``filters`` and
``arbitration`` (which filters decide), ``kernel`` and ``callout_api`` (what a
callout sees and calls), ``stack`` and ``endpoints`` (sockets and the layers
they cross), ``faults`` (engine guarantees that can be switched off) and
``workload`` (the built-in seeded workload). Import the parts you need; this
package module stays empty so that importing one part stays cheap.
"""
