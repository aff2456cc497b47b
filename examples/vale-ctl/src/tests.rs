//! vale-ctl: argument handling, output lines and exit codes against a fake kernel.

use super::*;
use netmap_uapi::user::Op;
use std::cell::RefCell;

#[derive(Default)]
struct Fake {
    calls: RefCell<Vec<String>>,
    fail: Option<(Op, i32)>,
}

impl Fake {
    fn check(&self, op: Op, name: &str, call: String) -> Result<(), Error> {
        self.calls.borrow_mut().push(call);
        match self.fail {
            Some((o, errno)) if o == op => Err(Error::Os {
                op,
                name: Some(name.into()),
                errno,
            }),
            _ => Ok(()),
        }
    }
}

impl Ctl for Fake {
    fn vale_list(&self) -> Result<Vec<ValePort>, Error> {
        self.check(Op::ValeList, "", "list".into())?;
        Ok(vec![
            ValePort {
                name: "vale0:a".into(),
                bridge_idx: 0,
                port_idx: 0,
            },
            ValePort {
                name: "vale0:b".into(),
                bridge_idx: 0,
                port_idx: 1,
            },
        ])
    }
    fn vale_list_port(&self, name: &str) -> Result<(u16, u32), Error> {
        self.check(Op::ValeList, name, format!("list {name}"))?;
        Ok((1, 4))
    }
    fn port_info(&self, name: &str) -> Result<NmreqPortInfoGet, Error> {
        self.check(Op::PortInfo, name, format!("info {name}"))?;
        Ok(NmreqPortInfoGet {
            nr_memsize: 42_369_024,
            nr_tx_slots: 1024,
            nr_rx_slots: 1024,
            nr_tx_rings: 1,
            nr_rx_rings: 1,
            nr_mem_id: 3,
            ..Default::default()
        })
    }
    fn vale_attach(&self, name: &str, host: bool, c: RingConfig, mem: u16) -> Result<u32, Error> {
        self.check(
            Op::ValeAttach,
            name,
            format!("attach {name} host={host} {c:?} mem={mem}"),
        )?;
        Ok(2)
    }
    fn vale_detach(&self, name: &str) -> Result<u32, Error> {
        self.check(Op::ValeDetach, name, format!("detach {name}"))?;
        Ok(2)
    }
    fn vale_newif(&self, name: &str, c: RingConfig, mem: u16) -> Result<NmreqValeNewif, Error> {
        self.check(Op::ValeNewif, name, format!("newif {name} {c:?} mem={mem}"))?;
        Ok(NmreqValeNewif {
            nr_tx_slots: 1024,
            nr_rx_slots: 1024,
            nr_tx_rings: 1,
            nr_rx_rings: 1,
            nr_mem_id: 5,
            ..Default::default()
        })
    }
    fn vale_delif(&self, name: &str) -> Result<(), Error> {
        self.check(Op::ValeDelif, name, format!("delif {name}"))
    }
    fn polling(&self, name: &str, on: Option<(PollingMode, u32, u32)>) -> Result<(), Error> {
        let op = if on.is_some() {
            Op::PollingEnable
        } else {
            Op::PollingDisable
        };
        self.check(op, name, format!("polling {name} {on:?}"))
    }
}

fn run(args: &[&str], fake: &Fake) -> (u8, String, String) {
    let mut argv = vec!["vale-ctl".to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let cmd = parse(&argv).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = execute(&cmd, fake, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn list_all_prints_every_port_and_exits_0() {
    let f = Fake::default();
    let (code, out, _) = run(&[], &f);
    assert_eq!(
        code, 0,
        "the reference exits 1 here (spec §15.5); we do not"
    );
    assert_eq!(
        out,
        "vale0:a bridge_idx 0 port_idx 0\nvale0:b bridge_idx 0 port_idx 1\n"
    );
    let f = Fake {
        fail: Some((Op::ValeList, 5)),
        ..Default::default()
    };
    let (code, _, err) = run(&["-v"], &f);
    assert_eq!(code, 1);
    assert!(err.starts_with("failed to list all: "), "{err}");
}

#[test]
fn single_list_and_info() {
    let f = Fake::default();
    assert_eq!(
        run(&["-l", "vale0:a"], &f),
        (0, "vale0:a bridge_idx 1 port_idx 4\n".into(), String::new())
    );
    let (code, _, err) = run(&["-l", "eth0"], &f);
    assert_eq!((code, err.as_str()), (1, "invalid vale name eth0\n"));
    let (code, out, _) = run(&["-g", "vale0:a"], &f);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "vale0:a: memsize 42369024 tx_slots 1024 rx_slots 1024 tx_rings 1 rx_rings 1 mem_id 3\n"
    );
}

#[test]
fn attach_detach_newif_delif() {
    let f = Fake::default();
    assert_eq!(run(&["-a", "vale0:eth0"], &f).0, 0);
    assert_eq!(
        run(&["-h", "vale0:eth1", "-C", "512,256,2", "-m", "7"], &f).0,
        0
    );
    assert_eq!(
        run(&["-n", "v0", "-C", "2048", "-m", "vale0:a", "-v"], &f).1,
        "v0: created, tx_slots 1024 rx_slots 1024 tx_rings 1 rx_rings 1 mem_id 5\n"
    );
    assert_eq!(
        run(&["-d", "vale0:eth0", "-v"], &f).1,
        "vale0:eth0: detached, port_index 2\n"
    );
    assert_eq!(run(&["-r", "v0"], &f).0, 0);
    let calls = f.calls.borrow();
    assert_eq!(
        calls[0],
        "attach vale0:eth0 host=false RingConfig { tx_slots: 0, rx_slots: 0, tx_rings: 0, rx_rings: 0 } mem=0"
    );
    assert_eq!(
        calls[1],
        "attach vale0:eth1 host=true RingConfig { tx_slots: 512, rx_slots: 256, tx_rings: 2, rx_rings: 2 } mem=7"
    );
    assert_eq!(
        calls[2], "info vale0:a",
        "-m with a port name looks up its mem id"
    );
    assert_eq!(
        calls[3],
        "newif v0 RingConfig { tx_slots: 2048, rx_slots: 2048, tx_rings: 0, rx_rings: 0 } mem=3"
    );
    assert_eq!(calls[5], "delif v0");
}

#[test]
fn failures_print_the_reference_message_and_exit_1() {
    let f = Fake {
        fail: Some((Op::ValeAttach, 16)),
        ..Default::default()
    };
    let (code, out, err) = run(&["-a", "vale0:eth0"], &f);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.starts_with("failed to attach vale0:eth0: Device or resource busy (EBUSY)"),
        "{err}"
    );
    let f = Fake {
        fail: Some((Op::ValeDelif, 6)),
        ..Default::default()
    };
    let (code, _, err) = run(&["-r", "v9"], &f);
    assert_eq!(code, 1);
    assert!(err.starts_with("failed to remove v9: "), "{err}");
    assert!(!err.contains("os error"), "no bare errno numbers: {err}");
    let f = Fake::default();
    let (code, _, err) = run(&["-m", "bogus", "-n", "v1"], &f);
    assert_eq!(code, 1);
    assert!(err.contains("missing 'netmap:' prefix"), "{err}");
}

#[test]
fn polling_config() {
    let f = Fake::default();
    assert_eq!(run(&["-p", "vale0:eth0", "-C", "1,2,3"], &f).0, 0);
    assert_eq!(run(&["-p", "vale0:eth0", "-C", "0,1"], &f).0, 0);
    let (code, _, err) = run(&["-p", "vale0:eth0"], &f);
    assert_eq!((code, err.as_str()), (1, "invalid null/empty config\n"));
    let (code, _, err) = run(&["-p", "vale0:eth0", "-C", "0,1,2"], &f);
    assert_eq!((code, err.as_str()), (1, "too many numbers in '0,1,2'\n"));
    assert_eq!(run(&["-P", "vale0:eth0"], &f).0, 0);
    let calls = f.calls.borrow();
    assert_eq!(calls[0], "polling vale0:eth0 Some((MultiCpu, 2, 3))");
    assert_eq!(calls[1], "polling vale0:eth0 Some((SingleCpu, 1, 0))");
    assert_eq!(calls[2], "polling vale0:eth0 None");
}

#[test]
fn last_action_wins_and_usage_errors() {
    let argv = |a: &[&str]| {
        let mut v = vec!["vale-ctl".to_string()];
        v.extend(a.iter().map(|s| s.to_string()));
        v
    };
    let c = parse(&argv(&["-a", "vale0:x", "-d", "vale0:y"])).unwrap();
    assert_eq!(c.action, Action::Detach("vale0:y".into()));
    let c = parse(&argv(&["-d", "vale0:y", "-h", "vale0:x"])).unwrap();
    assert_eq!(
        c.action,
        Action::Attach {
            name: "vale0:x".into(),
            host: true
        }
    );
    assert!(
        parse(&argv(&["extra"])).is_err(),
        "operands are a usage error"
    );
    assert!(parse(&argv(&["-x"])).is_err());
    let e = parse(&argv(&["--help"])).unwrap_err();
    assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
    assert!(e.to_string().contains("-h <NAME>"));
}

#[test]
fn ring_config_parsing() {
    assert_eq!(parse_ring_config(None).unwrap(), RingConfig::default());
    let c = parse_ring_config(Some("1024")).unwrap();
    assert_eq!((c.tx_slots, c.rx_slots, c.tx_rings), (1024, 1024, 0));
    let c = parse_ring_config(Some("1,2,3,4")).unwrap();
    assert_eq!(
        (c.tx_slots, c.rx_slots, c.tx_rings, c.rx_rings),
        (1, 2, 3, 4)
    );
    assert!(parse_ring_config(Some("a")).is_err());
    assert!(parse_ring_config(Some("1,2,70000")).is_err());
}
