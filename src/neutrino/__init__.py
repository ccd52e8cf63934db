"""neutrino: OpenStack Networking under the hood, small and fast."""
