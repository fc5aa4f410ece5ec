"""The VM target's libvirt layer: profiles, domain XML, overlays, snapshots,
pool and leases, crash watch and garbage collection.

Module map (each has one job):

``profile``    VM profile TOML -> :class:`~harness.vm.profile.Profile`
``pool``       pool TOML -> :class:`~harness.vm.pool.Pool` of slots
``tomlfile``   strict TOML reading with one-line ``FILE:LINE: KEY`` errors
``metadata``   the harness's ``<ch:lease>`` domain metadata (lease record)
``domainxml``  domain XML rendered from ``fixtures/templates``
``images``     qcow2 overlays and other files on the hypervisor (HostFiles)
``storage``    the same through libvirt's storage pool API, for remote hypervisors
``hostssh``    SSH to a remote hypervisor: tunnels to guest forwards, host keys
``connection`` the only libvirt import; libvirtError -> VmError
``lease``      atomic slot leases (the domain name is the lock), reclaiming
``provision``  :func:`~harness.vm.provision.leased_machine`: boot, snapshots, revert
``snapshots``  internal or saved-state snapshots (any firmware), chosen per profile
``crash``      guest panics -> dump, serial log, revert, GuestCrashed
``gc``         list and remove stale harness domains
``cli``        ``callout-harness vm list|gc``

``profile``, ``pool``, ``tomlfile``, ``metadata`` and ``domainxml`` import
without libvirt; everything that connects imports it lazily through
:mod:`harness.vm.connection`.
"""
