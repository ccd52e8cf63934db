"""`neutrino up`, `down` and `restart`: the seed page's world brought to life in a lab. Above both the lab (its state
dir, processes, emulated hosts, clouds.yaml) and instances (vm1 is one), which import neither of these modules."""
