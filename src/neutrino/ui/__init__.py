"""The web page at /ui: the live topology of what the caller may see, with hood and trace (neutrino.hood.where)."""
