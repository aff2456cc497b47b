//! Legacy NIOCREGIF / NIOCGINFO (§4.12): the 60-byte `nmreq` converted into
//! internal NIOCCTRL requests.

#![deny(unsafe_code)]

use super::{Netmap, NetmapPriv};
use crate::ioctl::{IoctlArg, IoctlReq};
use crate::name::{Name, concat};
use crate::platform::Platform;
use crate::request::Request;
use crate::{Errno, Result};
use netmap_uapi::pod::Pod;
use netmap_uapi::*;

impl<P: Platform> Netmap<P> {
    pub(super) fn ioctl_legacy(
        &self,
        np: &NetmapPriv<P>,
        cmd: IoctlReq,
        arg: &mut IoctlArg<'_>,
    ) -> Result<()> {
        if arg.is_null() {
            return Err(Errno::EINVAL);
        }
        let mut nmr = Nmreq::zeroed();
        arg.read(&self.platform, nmr.as_bytes_mut())?;
        let r = self.legacy(np, cmd, &mut nmr);
        if r.is_ok() {
            arg.write(&self.platform, nmr.as_bytes())?;
        }
        r
    }

    /// Run a kernel-built request (legacy conversion) with `body`; returns
    /// the body and header as the request left them.
    fn run_internal<T: Pod>(
        &self,
        np: &NetmapPriv<P>,
        hdr: NmreqHeader,
        body: &T,
    ) -> Result<(T, NmreqHeader)> {
        let mut req = Request::internal(hdr, body.as_bytes())?;
        self.dispatch(np, &mut req)?;
        Ok((req.body(), req.hdr))
    }

    pub(super) fn legacy(&self, np: &NetmapPriv<P>, cmd: IoctlReq, nmr: &mut Nmreq) -> Result<()> {
        if nmr.nr_version < u32::from(NETMAP_MIN_API) {
            return Err(Errno::EINVAL);
        }
        nmr.nr_name[15] = 0;
        let mut hdr = NmreqHeader::zeroed();
        hdr.nr_version = NETMAP_API;
        let name = Name::from_c(&nmr.nr_name);
        let mut mode = nmr.nr_flags & NR_REG_MASK;
        let ringid = u32::from(nmr.nr_ringid & NETMAP_RING_MASK);
        let mut name = name;
        let mut ringid16 = ringid as u16;
        if mode == NR_REG_DEFAULT {
            mode = if nmr.nr_ringid & NETMAP_SW_RING != 0 {
                NR_REG_SW
            } else if nmr.nr_ringid & NETMAP_HW_RING != 0 {
                NR_REG_ONE_NIC
            } else {
                NR_REG_ALL_NIC
            };
        } else if mode == NR_REG_PIPE_MASTER || mode == NR_REG_PIPE_SLAVE {
            let brace: &[u8] = if mode == NR_REG_PIPE_MASTER {
                b"{"
            } else {
                b"}"
            };
            let mut num = [0u8; 8];
            let mut v = ringid;
            let mut i = num.len();
            loop {
                i -= 1;
                num[i] = b'0' + (v % 10) as u8;
                v /= 10;
                if v == 0 {
                    break;
                }
            }
            name = concat(&[name.as_bytes(), brace, &num[i..]]);
            mode = NR_REG_ALL_NIC;
            ringid16 = 0;
        }
        hdr.nr_name = name.to_c_array();
        let mut flags = u64::from(nmr.nr_flags & !NR_REG_MASK);
        if nmr.nr_ringid & NETMAP_NO_TX_POLL != 0 {
            flags |= NR_NO_TX_POLL;
        }
        if nmr.nr_ringid & NETMAP_DO_RX_POLL != 0 {
            flags |= NR_DO_RX_POLL;
        }
        let reg = NmreqRegister {
            nr_tx_slots: nmr.nr_tx_slots,
            nr_rx_slots: nmr.nr_rx_slots,
            nr_tx_rings: nmr.nr_tx_rings,
            nr_rx_rings: nmr.nr_rx_rings,
            nr_mem_id: nmr.nr_arg2,
            nr_ringid: ringid16,
            nr_mode: mode,
            nr_extra_bufs: nmr.nr_arg3,
            nr_flags: flags,
            ..NmreqRegister::zeroed()
        };
        match (cmd, nmr.nr_cmd) {
            (IoctlReq::RegIf, 0) => {
                hdr.nr_reqtype = NETMAP_REQ_REGISTER;
                let (out, _) = self.run_internal(np, hdr, &reg)?;
                nmr.nr_offset = out.nr_offset as u32;
                nmr.nr_memsize = out.nr_memsize as u32;
                nmr.nr_tx_slots = out.nr_tx_slots;
                nmr.nr_rx_slots = out.nr_rx_slots;
                nmr.nr_tx_rings = out.nr_tx_rings;
                nmr.nr_rx_rings = out.nr_rx_rings;
                nmr.nr_arg2 = out.nr_mem_id;
                nmr.nr_arg3 = out.nr_extra_bufs;
                Ok(())
            }
            (IoctlReq::GetInfo, 0) => {
                hdr.nr_reqtype = NETMAP_REQ_PORT_INFO_GET;
                let pi = NmreqPortInfoGet {
                    nr_tx_slots: reg.nr_tx_slots,
                    nr_rx_slots: reg.nr_rx_slots,
                    nr_tx_rings: reg.nr_tx_rings,
                    nr_rx_rings: reg.nr_rx_rings,
                    nr_mem_id: reg.nr_mem_id,
                    ..NmreqPortInfoGet::zeroed()
                };
                let (out, _) = self.run_internal(np, hdr, &pi)?;
                nmr.nr_memsize = out.nr_memsize as u32;
                nmr.nr_tx_slots = out.nr_tx_slots;
                nmr.nr_rx_slots = out.nr_rx_slots;
                nmr.nr_tx_rings = out.nr_tx_rings;
                nmr.nr_rx_rings = out.nr_rx_rings;
                nmr.nr_arg2 = out.nr_mem_id;
                Ok(())
            }
            (IoctlReq::GetInfo, c) if c == NETMAP_BDG_LIST => {
                hdr.nr_reqtype = NETMAP_REQ_VALE_LIST;
                let l = NmreqValeList {
                    nr_bridge_idx: nmr.nr_arg1,
                    nr_port_idx: u32::from(nmr.nr_arg2),
                    ..NmreqValeList::zeroed()
                };
                let (out, h) = self.run_internal(np, hdr, &l)?;
                nmr.nr_name = Name::from_c(&h.nr_name).to_c_array_truncated::<16>();
                nmr.nr_arg1 = out.nr_bridge_idx;
                nmr.nr_arg2 = out.nr_port_idx as u16;
                Ok(())
            }
            (_, c) if c == NETMAP_BDG_VNET_HDR || c == NETMAP_VNET_HDR_GET => {
                hdr.nr_reqtype = if c == NETMAP_BDG_VNET_HDR {
                    NETMAP_REQ_PORT_HDR_SET
                } else {
                    NETMAP_REQ_PORT_HDR_GET
                };
                let h = NmreqPortHdr {
                    nr_hdr_len: u32::from(nmr.nr_arg1),
                    ..NmreqPortHdr::zeroed()
                };
                let (out, _) = self.run_internal(np, hdr, &h)?;
                nmr.nr_arg1 = out.nr_hdr_len as u16;
                Ok(())
            }
            (_, c) if c == NETMAP_PT_HOST_CREATE || c == NETMAP_PT_HOST_DELETE => {
                Err(Errno::ENOMEM)
            }
            (_, c) if c == NETMAP_BDG_NEWIF => {
                hdr.nr_reqtype = NETMAP_REQ_VALE_NEWIF;
                let nb = NmreqValeNewif {
                    nr_tx_slots: reg.nr_tx_slots,
                    nr_rx_slots: reg.nr_rx_slots,
                    nr_tx_rings: reg.nr_tx_rings,
                    nr_rx_rings: reg.nr_rx_rings,
                    nr_mem_id: reg.nr_mem_id,
                    ..NmreqValeNewif::zeroed()
                };
                let (out, _) = self.run_internal(np, hdr, &nb)?;
                nmr.nr_tx_slots = out.nr_tx_slots;
                nmr.nr_rx_slots = out.nr_rx_slots;
                nmr.nr_tx_rings = out.nr_tx_rings;
                nmr.nr_rx_rings = out.nr_rx_rings;
                nmr.nr_arg2 = out.nr_mem_id;
                Ok(())
            }
            (_, c) if c == NETMAP_BDG_ATTACH || c == NETMAP_BDG_DETACH || c == NETMAP_BDG_DELIF => {
                hdr.nr_reqtype = match c {
                    x if x == NETMAP_BDG_ATTACH => NETMAP_REQ_VALE_ATTACH,
                    x if x == NETMAP_BDG_DETACH => NETMAP_REQ_VALE_DETACH,
                    _ => NETMAP_REQ_VALE_DELIF,
                };
                let mut a = NmreqValeAttach::zeroed();
                a.reg = reg;
                a.reg.nr_mode = if c == NETMAP_BDG_ATTACH && nmr.nr_arg1 & NETMAP_BDG_HOST != 0 {
                    NR_REG_NIC_SW
                } else {
                    NR_REG_ALL_NIC
                };
                let size = body_size(hdr.nr_reqtype);
                let mut req = Request::internal(hdr, &a.as_bytes()[..size])?;
                self.dispatch(np, &mut req)
            }
            _ => Err(Errno::EINVAL),
        }
    }
}
