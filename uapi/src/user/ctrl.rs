//! Control requests that need no bound port (spec §4.5–§4.9): VALE switch
//! management, port and pool information, virtio-net header length.

use super::error::{Error, Op, Result};
use super::sys;
use crate::abi::{
    NmreqHeader, NmreqPoolsInfo, NmreqPortHdr, NmreqPortInfoGet, NmreqValeAttach, NmreqValeDetach,
    NmreqValeList, NmreqValeNewif, NmreqValePolling,
};
use crate::consts::*;
use crate::pod::Pod;
#[cfg(unix)]
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

/// Ring and slot counts for VALE_NEWIF / VALE_ATTACH (0 = default), the
/// `tx_slots[,rx_slots[,tx_rings[,rx_rings]]]` of `vale-ctl -C`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RingConfig {
    /// Slots per TX ring.
    pub tx_slots: u32,
    /// Slots per RX ring.
    pub rx_slots: u32,
    /// TX rings.
    pub tx_rings: u16,
    /// RX rings.
    pub rx_rings: u16,
}

/// One port of a VALE switch, as returned by [`Netmap::vale_list`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ValePort {
    /// Full port name (`valeX:port`).
    pub name: String,
    /// Index of the switch.
    pub bridge_idx: u16,
    /// Index of the port in the switch.
    pub port_idx: u32,
}

/// Polling mode of [`Netmap::vale_polling_enable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PollingMode {
    /// One kernel thread polls all RX rings (`NETMAP_POLLING_MODE_SINGLE_CPU`).
    SingleCpu,
    /// One kernel thread per RX ring (`NETMAP_POLLING_MODE_MULTI_CPU`).
    MultiCpu,
}

/// A `/dev/netmap` descriptor for control requests (a fresh, unbound file, as
/// `vale-ctl` uses).
///
/// ```no_run
/// use netmap_uapi::user::{Netmap, RingConfig};
///
/// let nm = Netmap::open()?;
/// nm.vale_newif("v0", RingConfig::default(), 0)?;
/// nm.vale_attach("vale0:v0", false, RingConfig::default(), 0)?;
/// for p in nm.vale_list()? {
///     println!("{} bridge_idx {} port_idx {}", p.name, p.bridge_idx, p.port_idx);
/// }
/// # Ok::<(), netmap_uapi::user::Error>(())
/// ```
#[derive(Debug)]
pub struct Netmap {
    fd: sys::OwnedDev,
}

impl Netmap {
    /// Opens `/dev/netmap`.
    pub fn open() -> Result<Self> {
        let fd = sys::open_device().map_err(|e| Error::os(Op::Open, None, &e))?;
        Ok(Self { fd })
    }

    /// Sends request `reqtype` on `name` with `body`; returns the header as written
    /// back by the kernel.
    fn request<B: Pod>(
        &self,
        op: Op,
        reqtype: u16,
        name: &str,
        body: &mut B,
    ) -> Result<NmreqHeader> {
        let bytes = name.as_bytes();
        if bytes.len() >= NETMAP_REQ_IFNAMSIZ || bytes.contains(&0) {
            return Err(Error::InvalidArgument {
                what: format!("port name '{name}' longer than 63 bytes or with a NUL"),
            });
        }
        let mut hdr = NmreqHeader::new(reqtype, bytes);
        sys::ctrl(sys::borrow(&self.fd), &mut hdr, body.as_bytes_mut())
            .map_err(|e| Error::os(op, (!name.is_empty()).then_some(name), &e))?;
        Ok(hdr)
    }

    /// PORT_INFO_GET: memory size, ring and slot counts and mem id of port `name`
    /// (created temporarily if needed).
    pub fn port_info(&self, name: &str) -> Result<NmreqPortInfoGet> {
        let mut b = NmreqPortInfoGet::default();
        self.request(Op::PortInfo, NETMAP_REQ_PORT_INFO_GET, name, &mut b)?;
        Ok(b)
    }

    /// PORT_INFO_GET with an empty name: size of memory region `mem_id`.
    pub fn mem_info(&self, mem_id: u16) -> Result<NmreqPortInfoGet> {
        let mut b = NmreqPortInfoGet {
            nr_mem_id: mem_id,
            ..Default::default()
        };
        self.request(Op::PortInfo, NETMAP_REQ_PORT_INFO_GET, "", &mut b)?;
        Ok(b)
    }

    /// POOLS_INFO_GET: the pool layout of the region used by port `name`.
    pub fn pools_info(&self, name: &str, mem_id: u16) -> Result<NmreqPoolsInfo> {
        let mut b = NmreqPoolsInfo {
            nr_mem_id: mem_id,
            ..Default::default()
        };
        self.request(Op::PoolsInfo, NETMAP_REQ_POOLS_INFO_GET, name, &mut b)?;
        Ok(b)
    }

    /// VALE_ATTACH `valeX:ifname`: attaches a NIC (with its host stack if
    /// `host`) or a persistent VALE port to switch `valeX`. Returns the port index.
    pub fn vale_attach(
        &self,
        name: &str,
        host: bool,
        conf: RingConfig,
        mem_id: u16,
    ) -> Result<u32> {
        let mut b = NmreqValeAttach::default();
        b.reg.nr_mode = if host { NR_REG_NIC_SW } else { NR_REG_ALL_NIC };
        b.reg.nr_tx_slots = conf.tx_slots;
        b.reg.nr_rx_slots = conf.rx_slots;
        b.reg.nr_tx_rings = conf.tx_rings;
        b.reg.nr_rx_rings = conf.rx_rings;
        b.reg.nr_mem_id = mem_id;
        self.request(Op::ValeAttach, NETMAP_REQ_VALE_ATTACH, name, &mut b)?;
        Ok(b.port_index)
    }

    /// VALE_DETACH `valeX:ifname`. Returns the port index it had.
    pub fn vale_detach(&self, name: &str) -> Result<u32> {
        let mut b = NmreqValeDetach::default();
        self.request(Op::ValeDetach, NETMAP_REQ_VALE_DETACH, name, &mut b)?;
        Ok(b.port_index)
    }

    /// VALE_LIST of one port `valeX:port`: `(bridge_idx, port_idx)`; `port_idx` is
    /// [`NM_BDG_NOPORT`] when the switch exists but the port does not.
    pub fn vale_list_port(&self, name: &str) -> Result<(u16, u32)> {
        let mut b = NmreqValeList::default();
        self.request(Op::ValeList, NETMAP_REQ_VALE_LIST, name, &mut b)?;
        Ok((b.nr_bridge_idx, b.nr_port_idx))
    }

    /// VALE_LIST enumeration: every port of every switch.
    pub fn vale_list(&self) -> Result<Vec<ValePort>> {
        let mut out = Vec::new();
        let mut b = NmreqValeList::default();
        loop {
            match self.request(Op::ValeList, NETMAP_REQ_VALE_LIST, "", &mut b) {
                Ok(hdr) => {
                    out.push(ValePort {
                        name: String::from_utf8_lossy(hdr.name()).into_owned(),
                        bridge_idx: b.nr_bridge_idx,
                        port_idx: b.nr_port_idx,
                    });
                    b.nr_port_idx += 1;
                }
                Err(Error::Os { errno, .. }) if errno == errno::ENOENT => return Ok(out),
                Err(e) => return Err(e),
            }
        }
    }

    /// VALE_NEWIF: creates persistent VALE port `name` (a Linux interface).
    /// Returns the configuration actually used.
    pub fn vale_newif(&self, name: &str, conf: RingConfig, mem_id: u16) -> Result<NmreqValeNewif> {
        let mut b = NmreqValeNewif {
            nr_tx_slots: conf.tx_slots,
            nr_rx_slots: conf.rx_slots,
            nr_tx_rings: conf.tx_rings,
            nr_rx_rings: conf.rx_rings,
            nr_mem_id: mem_id,
            ..Default::default()
        };
        self.request(Op::ValeNewif, NETMAP_REQ_VALE_NEWIF, name, &mut b)?;
        Ok(b)
    }

    /// VALE_DELIF: removes persistent VALE port `name`.
    pub fn vale_delif(&self, name: &str) -> Result<()> {
        let mut none = [0u8; 0];
        self.request(Op::ValeDelif, NETMAP_REQ_VALE_DELIF, name, &mut none)?;
        Ok(())
    }

    /// PORT_HDR_GET: the virtio-net header length of port `name`.
    pub fn port_hdr_get(&self, name: &str) -> Result<u32> {
        let mut b = NmreqPortHdr::default();
        self.request(Op::PortHdrGet, NETMAP_REQ_PORT_HDR_GET, name, &mut b)?;
        Ok(b.nr_hdr_len)
    }

    /// PORT_HDR_SET: sets the virtio-net header length (0, 10 or 12) of VALE port
    /// `name`.
    pub fn port_hdr_set(&self, name: &str, len: u32) -> Result<()> {
        let mut b = NmreqPortHdr {
            nr_hdr_len: len,
            ..Default::default()
        };
        self.request(Op::PortHdrSet, NETMAP_REQ_PORT_HDR_SET, name, &mut b)?;
        Ok(())
    }

    /// VALE_POLLING_ENABLE on `valeX:nic`.
    pub fn vale_polling_enable(
        &self,
        name: &str,
        mode: PollingMode,
        first_cpu: u32,
        ncpus: u32,
    ) -> Result<()> {
        let mut b = NmreqValePolling {
            nr_mode: match mode {
                PollingMode::SingleCpu => NETMAP_POLLING_MODE_SINGLE_CPU,
                PollingMode::MultiCpu => NETMAP_POLLING_MODE_MULTI_CPU,
            },
            nr_first_cpu_id: first_cpu,
            nr_num_polling_cpus: ncpus,
            ..Default::default()
        };
        self.request(
            Op::PollingEnable,
            NETMAP_REQ_VALE_POLLING_ENABLE,
            name,
            &mut b,
        )?;
        Ok(())
    }

    /// VALE_POLLING_DISABLE on `valeX:nic`.
    pub fn vale_polling_disable(&self, name: &str) -> Result<()> {
        let mut b = NmreqValePolling::default();
        self.request(
            Op::PollingDisable,
            NETMAP_REQ_VALE_POLLING_DISABLE,
            name,
            &mut b,
        )?;
        Ok(())
    }
}

#[cfg(unix)]
impl AsFd for Netmap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        sys::borrow(&self.fd)
    }
}

#[cfg(unix)]
impl AsRawFd for Netmap {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
