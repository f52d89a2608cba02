//! cgroups: v1, v2 and hybrid cgroup management for mantle containers.
