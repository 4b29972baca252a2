"""A real-world development set: public captures from other repositories, listed in manifest.csv."""
