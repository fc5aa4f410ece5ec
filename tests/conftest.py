"""Shared configuration of the project's own tests."""
