"""A small screening model used to show mlgates on a project that is not mlref."""
