use std::net::SocketAddr;

use rill_spu::{Spu, SpuConfig, SpuHandle};

/// An SPU in a temp dir, stopped by the test.
pub struct TestSpu {
    pub handle: Option<SpuHandle>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl TestSpu {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let handle = Spu::start(SpuConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            dir.path().join("data"),
        ))
        .await
        .unwrap();
        Self {
            addr: handle.local_addr(),
            handle: Some(handle),
            dir,
        }
    }

    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Stops the SPU (gracefully); `start_again` brings it back on the same
    /// port and data.
    pub async fn stop_for_now(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }

    pub async fn start_again(&mut self) {
        let handle = Spu::start(SpuConfig::new(self.addr, self.dir.path().join("data")))
            .await
            .unwrap();
        self.handle = Some(handle);
    }

    pub async fn stop(mut self) {
        self.stop_for_now().await;
    }
}
