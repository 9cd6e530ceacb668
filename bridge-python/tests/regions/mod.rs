//! What a process maps of troupe's shared memory, and what is left in `/dev/shm`.

#![allow(dead_code)]

/// How many distinct shared-memory regions of troupe process `pid` maps now (memory files,
/// from its memory map).
pub(crate) fn mapped_regions(pid: u32) -> usize {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let inodes: std::collections::HashSet<&str> = maps
        .lines()
        .filter(|line| line.contains("/memfd:troupe"))
        .filter_map(|line| line.split_whitespace().nth(4))
        .collect();
    inodes.len()
}

/// Names process `pid` has in `/dev/shm` in troupe's old scheme (`troupe-<pid>-...`):
/// there are none, regions are memory files without a name, which vanish with their last
/// holder.
pub(crate) fn shm_names(pid: u32) -> usize {
    let prefix = format!("troupe-{pid}-");
    std::fs::read_dir("/dev/shm")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .count()
}
