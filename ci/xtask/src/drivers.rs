//! Netmap-aware NIC drivers (`drivers/`): `virtio_net_netmap.ko`, a copy
//! of the kernel's own `drivers/net/virtio_net.c` (from Debian's
//! `linux-source-X.Y` package) with a few hook lines added, plus
//! `drivers/virtio-net/virtio_netmap.h` (the netmap side), built out of
//! tree against the same headers as netmap.ko and linked against its
//! exports (`KBUILD_EXTRA_SYMBOLS`).
//!
//! Every hook is an anchored insertion: the anchor must occur exactly once
//! in the source, else the build fails and names the anchor (a new kernel
//! release that moved the code needs a look, never a silent mispatch).
//! Where the kernel lines differ (Debian 12's 6.1, Debian 13's 6.12) a hook
//! lists one anchor per line; the first that occurs exactly once is used.

use crate::module::{Kernel, write_if_changed};
use crate::util::{Result, root};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Text inserted before and after an anchor (the first of `anchor` that
/// occurs exactly once in the source).
struct Hook {
    anchor: &'static [&'static str],
    before: &'static str,
    after: &'static str,
}

const HOOKS: &[Hook] = &[
    // State: the netmap side of the device, and whether it is in netmap mode.
    Hook {
        anchor: &["struct virtnet_info {\n"],
        before: "struct virtio_netmap;\n\n",
        after: "\tstruct virtio_netmap *nm;\t/* netmap native mode */\n\tbool nm_on;\n",
    },
    // Prototypes of virtio_netmap.h (included at the end).
    Hook {
        anchor: &[
            "static void skb_xmit_done(struct virtqueue *vq)\n{\n\tstruct virtnet_info *vi = vq->vdev->priv;\n\tstruct napi_struct *napi = &vi->sq[vq2txq(vq)].napi;\n",
        ],
        before: "static bool virtio_netmap_irq(struct virtnet_info *vi, struct virtqueue *vq, bool tx);\n\
static bool virtio_netmap_napi(struct virtnet_info *vi, struct napi_struct *napi);\n\
static void virtio_netmap_attach(struct virtnet_info *vi);\n\
static void virtio_netmap_detach(struct virtnet_info *vi);\n\n",
        after: "\n\tif (virtio_netmap_irq(vi, vq, true))\n\t\treturn;\n",
    },
    Hook {
        anchor: &[
            "static void skb_recv_done(struct virtqueue *rvq)\n{\n\tstruct virtnet_info *vi = rvq->vdev->priv;\n\tstruct receive_queue *rq = &vi->rq[vq2rxq(rvq)];\n",
        ],
        before: "",
        after: "\n\tif (virtio_netmap_irq(vi, rvq, false))\n\t\treturn;\n",
    },
    // NAPI polls do nothing in netmap mode.
    Hook {
        anchor: &[
            "\tunsigned int xdp_xmit = 0;\n\n\tif (budget)\n\t\tvirtqueue_disable_cb(rq->vq);\n",
            "\tbool napi_complete;\n\n\tif (budget)\n\t\tvirtqueue_disable_cb(rq->vq);\n",
        ],
        before: "",
        after: "\n\tif (virtio_netmap_napi(vi, napi))\n\t\treturn 0;\n",
    },
    Hook {
        anchor: &[
            "\tstruct virtnet_info *vi = sq->vq->vdev->priv;\n\tunsigned int index = vq2txq(sq->vq);\n\tstruct netdev_queue *txq;\n\tint opaque;\n\tbool done;\n",
        ],
        before: "",
        after: "\n\tif (virtio_netmap_napi(vi, napi))\n\t\treturn 0;\n",
    },
    // No skb refill in netmap mode.
    Hook {
        anchor: &[
            "\t\tif (i < vi->curr_queue_pairs)\n\t\t\t/* Make sure we have some buffers: if oom use wq. */\n",
        ],
        before: "\t\tif (READ_ONCE(vi->nm_on))\n\t\t\t;\n\t\telse\n",
        after: "",
    },
    Hook {
        anchor: &[
            "\t\tcontainer_of(work, struct virtnet_info, refill.work);\n\tbool still_empty;\n\tint i;\n",
        ],
        before: "",
        after: "\n\tif (READ_ONCE(vi->nm_on))\n\t\treturn;\n",
    },
    // The stack does not transmit in netmap mode (netmap's generic hook
    // already sends its frames to the host RX ring; this is the guard).
    Hook {
        anchor: &[
            "\tbool use_napi = sq->napi.weight;\n\tbool kick;\n",
            "\tbool use_napi = sq->napi.weight;\n",
        ],
        before: "",
        after: "\n\tif (unlikely(READ_ONCE(vi->nm_on))) {\n\t\tdev_kfree_skb_any(skb);\n\t\treturn NETDEV_TX_OK;\n\t}\n",
    },
    // Reconfigurations that refill or resize the rings wait for netmap.
    Hook {
        anchor: &[
            "\tu32 rx_pending, tx_pending;\n\tstruct receive_queue *rq;\n\tstruct send_queue *sq;\n\tint i, err;\n",
        ],
        before: "",
        after: "\n\tif (READ_ONCE(vi->nm_on))\n\t\treturn -EBUSY;\n",
    },
    Hook {
        anchor: &["\tu16 queue_pairs = channels->combined_count;\n\tint err;\n"],
        before: "",
        after: "\n\tif (READ_ONCE(vi->nm_on))\n\t\treturn -EBUSY;\n",
    },
    Hook {
        anchor: &["\tu16 xdp_qp = 0, curr_qp;\n\tint i, err;\n"],
        before: "",
        after: "\n\tif (READ_ONCE(vi->nm_on))\n\t\treturn -EBUSY;\n",
    },
    // Attach once the netdev is registered, detach before it goes.
    Hook {
        anchor: &["\tpr_debug(\"virtnet: registered device %s with %d RX and TX vq's\\n\",\n"],
        before: "\tvirtio_netmap_attach(vi);\n\n",
        after: "",
    },
    Hook {
        anchor: &["\tunregister_netdev(vi->dev);\n\n\tnet_failover_destroy(vi->failover);\n"],
        before: "\tvirtio_netmap_detach(vi);\n",
        after: "",
    },
    // The netmap side, after everything it calls.
    Hook {
        anchor: &["static void virtnet_remove(struct virtio_device *vdev)\n{\n"],
        before: "#include \"virtio_netmap.h\"\n\n",
        after: "",
    },
];

/// Apply [`HOOKS`] to `src` (Linux's virtio_net.c).
pub fn patch_virtio_net(src: &str) -> Result<String> {
    let mut s = src.to_string();
    for h in HOOKS {
        let Some(anchor) = h.anchor.iter().find(|a| s.matches(**a).count() == 1) else {
            let found: Vec<usize> = h.anchor.iter().map(|a| s.matches(*a).count()).collect();
            return Err(format!(
                "virtio_net.c: anchor found {found:?} times (want 1): {:?}",
                h.anchor
            ));
        };
        let at = s.find(anchor).unwrap_or(0);
        let end = at + anchor.len();
        s = format!("{}{}{}{}{}", &s[..at], h.before, anchor, h.after, &s[end..]);
    }
    s = s.replacen(
        "MODULE_DESCRIPTION(\"Virtio network driver\");",
        "MODULE_DESCRIPTION(\"Virtio network driver (netmap native mode)\");",
        1,
    );
    Ok(s)
}

/// The kernel source tarball for `k` (`/usr/src/linux-source-X.Y.tar.xz`
/// of the kernel's system: the build machine, or the line's chroot, where
/// it is installed on first use).
fn source_tarball(k: &Kernel) -> Result<PathBuf> {
    let mut it = k.version.split(['.', '-']);
    let (major, minor) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
    let pkg = format!("linux-source-{major}.{minor}");
    let p = k.sysroot.join(format!("usr/src/{pkg}.tar.xz"));
    if !p.exists() && k.chroot {
        println!("module: installing {pkg} in {}", k.sysroot.display());
        crate::util::run_cmd(&mut crate::trixie::command(
            &k.sysroot,
            &[],
            &[
                "apt-get",
                "-q",
                "install",
                "-y",
                "--no-install-recommends",
                &pkg,
            ],
        ))?;
    }
    if !p.exists() {
        return Err(format!(
            "{} missing: install {pkg} (`cargo xtask setup`)",
            p.display()
        ));
    }
    Ok(p)
}

/// Build `virtio_net_netmap.ko` for `k` next to netmap.ko (`netmap_ko`'s
/// directory holds the Module.symvers with netmap's exports); returns its
/// path.
pub fn build_virtio_net(k: &Kernel, netmap_ko: &Path) -> Result<PathBuf> {
    let tarball = source_tarball(k)?;
    let dir = crate::module::kdir().join(&k.version).join("virtio-net");
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // The pristine source, extracted once per tarball.
    let orig = dir.join("virtio_net.c.orig");
    let stamp = dir.join("source");
    let want = format!("{}\n", tarball.display());
    if !orig.exists() || fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        let out = Command::new("tar")
            .arg("-xJOf")
            .arg(&tarball)
            .arg("--wildcards")
            .arg("*/drivers/net/virtio_net.c")
            .output()
            .map_err(|e| format!("tar: {e}"))?;
        if !out.status.success() || out.stdout.is_empty() {
            return Err(format!(
                "cannot extract drivers/net/virtio_net.c from {}: {}",
                tarball.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        fs::write(&orig, &out.stdout).map_err(|e| format!("{}: {e}", orig.display()))?;
        fs::write(&stamp, &want).map_err(|e| format!("{}: {e}", stamp.display()))?;
    }
    let src = fs::read_to_string(&orig).map_err(|e| format!("{}: {e}", orig.display()))?;
    let patched = patch_virtio_net(&src)?;
    write_if_changed(&dir.join("virtio_net_netmap.c"), patched.as_bytes())?;
    for (from, to) in [
        ("drivers/virtio-net/virtio_netmap.h", "virtio_netmap.h"),
        ("os/linux/netmap_native.h", "netmap_native.h"),
    ] {
        let data = fs::read(root().join(from)).map_err(|e| format!("{from}: {e}"))?;
        write_if_changed(&dir.join(to), &data)?;
    }
    write_if_changed(&dir.join("Kbuild"), b"obj-m := virtio_net_netmap.o\n")?;
    // netmap's exports, beside the sources (the directory is all a chroot
    // build sees of the host).
    let symvers = netmap_ko
        .parent()
        .ok_or("netmap.ko has no directory")?
        .join("Module.symvers");
    let data = fs::read(&symvers).map_err(|e| format!("{}: {e}", symvers.display()))?;
    write_if_changed(&dir.join("netmap.symvers"), &data)?;
    let mut cmd = if k.chroot {
        let headers = Path::new("/").join(
            k.headers
                .strip_prefix(&k.sysroot)
                .map_err(|_| format!("{} is not in the chroot", k.headers.display()))?,
        );
        crate::trixie::command(
            &k.sysroot,
            &[(dir.as_path(), "/build")],
            &[
                "make",
                "-C",
                &headers.to_string_lossy(),
                "M=/build",
                "KBUILD_EXTRA_SYMBOLS=/build/netmap.symvers",
                "modules",
            ],
        )
    } else {
        let mut c = Command::new("make");
        c.arg("-C")
            .arg(&k.headers)
            .arg(format!("M={}", dir.display()))
            .arg(format!(
                "KBUILD_EXTRA_SYMBOLS={}",
                dir.join("netmap.symvers").display()
            ))
            .arg("modules");
        c
    };
    let out = cmd
        .env_remove("MAKEFLAGS")
        .env_remove("CARGO_MAKEFLAGS")
        .output()
        .map_err(|e| format!("make: {e}"))?;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        eprint!("{log}");
        return Err(format!("virtio_net_netmap.ko for {} failed", k.version));
    }
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("warning:") || l.contains("objtool:") || l.contains("WARNING: modpost:")
        })
        .collect();
    if !warnings.is_empty() {
        eprint!("{log}");
        return Err(format!(
            "virtio_net_netmap.ko: the build warned:\n{}",
            warnings.join("\n")
        ));
    }
    let ko = dir.join("virtio_net_netmap.ko");
    eprintln!("module: {}", ko.display());
    Ok(ko)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_must_be_unique() {
        let e = patch_virtio_net("nothing here").unwrap_err();
        assert!(e.contains("found [0] times"), "{e}");
    }
}
