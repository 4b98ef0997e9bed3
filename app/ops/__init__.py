"""Operating robot: the `robot` command, the supervisord launcher, backup and restore."""
