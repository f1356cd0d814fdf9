//! Where each piece of cluster metadata lives in the store, and who writes
//! it:
//!
//! | key | value | written by | lease |
//! |---|---|---|---|
//! | `/rill/spus/<id>` | the SPU's advertised `host:port` | that SPU | the SPU's session |
//! | `/rill/controller` | the controller's SPU id | the SPU elected | its session |
//!
//! Topics, partition state and producer-id blocks join them with the
//! controller.

/// Every key of Rill's lives under this prefix.
pub const ROOT: &str = "/rill/";
/// SPU registrations, one key per SPU id.
pub const SPUS: &str = "/rill/spus/";
/// The controller's SPU id.
pub const CONTROLLER: &str = "/rill/controller";

/// The registration key of SPU `id`, zero-padded so keys sort by id.
pub fn spu(id: u32) -> String {
    format!("{SPUS}{id:010}")
}

/// The SPU id of a registration key.
pub fn spu_id(key: &str) -> Option<u32> {
    key.strip_prefix(SPUS)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spu_keys_sort_by_id_and_parse_back() {
        assert!(spu(9) < spu(10));
        assert_eq!(spu_id(&spu(42)), Some(42));
        assert_eq!(spu_id("/rill/spus/x"), None);
    }
}
