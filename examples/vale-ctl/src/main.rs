//! vale-ctl: manage VALE switches (spec §14.2). See `vale-ctl --help`.
//!
//! Like the reference, the last action option wins and a port name is its
//! argument; without an action the switches are listed. Unlike the reference,
//! listing exits with status 0 on success (the reference's exit 1 is a bug, spec
//! §15.5).

use clap::{Arg, ArgAction, ArgMatches, Command};
use netmap_uapi::NmreqPortInfoGet;
use netmap_uapi::NmreqValeNewif;
use netmap_uapi::portname::PortSpec;
use netmap_uapi::user::{Error, Netmap, PollingMode, RingConfig, ValePort};
use std::io::Write;
use std::process::ExitCode;

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    ListAll,
    List(String),
    Info(String),
    Attach { name: String, host: bool },
    Detach(String),
    NewIf(String),
    DelIf(String),
    PollOn(String),
    PollOff(String),
}

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Cmd {
    action: Action,
    config: Option<String>,
    mem: Option<String>,
    verbose: bool,
}

const ACTIONS: [(&str, char, &str); 9] = [
    (
        "detach",
        'd',
        "Detach interface IF (valeX:IF) from its switch",
    ),
    (
        "attach",
        'a',
        "Attach interface IF to switch valeX (valeX:IF)",
    ),
    (
        "host",
        'h',
        "Attach interface IF and its host stack to switch valeX (valeX:IF)",
    ),
    (
        "info",
        'g',
        "Print memsize, ring and slot counts and mem id of port PORT",
    ),
    ("list", 'l', "List switch and port index of valeX:Y"),
    (
        "new",
        'n',
        "Create persistent VALE port NAME (a network interface)",
    ),
    ("remove", 'r', "Remove persistent VALE port NAME"),
    (
        "poll-on",
        'p',
        "Enable kernel polling threads on valeX:IF (needs -C)",
    ),
    (
        "poll-off",
        'P',
        "Disable kernel polling threads on valeX:IF",
    ),
];

fn command() -> Command {
    let mut c = Command::new("vale-ctl")
        .about("Manage VALE switches: attach and detach interfaces, create and remove persistent ports, list ports")
        .disable_help_flag(true)
        .disable_version_flag(true)
        .after_help(
            "Without options, every port of every switch is listed.\n\
             Examples:\n  vale-ctl -n v0 -C 1024,1024,2,2   create persistent port v0\n  \
             vale-ctl -a vale0:v0             attach it to switch vale0\n  \
             vale-ctl -h vale0:eth0           attach eth0 and its host stack\n  \
             vale-ctl -l vale0:v0             show its indexes\n  \
             vale-ctl -d vale0:v0; vale-ctl -r v0",
        );
    for (id, short, help) in ACTIONS {
        c = c.arg(
            Arg::new(id)
                .short(short)
                .value_name("NAME")
                .action(ArgAction::Append)
                .help(help),
        );
    }
    c.arg(
        Arg::new("config")
            .short('C')
            .value_name("CONF")
            .help("-n/-a: tx_slots[,rx_slots[,tx_rings[,rx_rings]]]; -p: mode,first_cpu[,ncpus] (mode 0 = single CPU)"),
    )
    .arg(
        Arg::new("mem")
            .short('m')
            .value_name("MEMID")
            .help("-n/-a: memory region: a mem id, or a port (netmap:IF, valeX:Y) whose region to share"),
    )
    .arg(
        Arg::new("verbose")
            .short('v')
            .action(ArgAction::SetTrue)
            .help("Print the results of the request"),
    )
    .arg(
        Arg::new("help")
            .long("help")
            .action(ArgAction::Help)
            .help("Print this help"),
    )
}

/// The action of the last action option (getopt order), with its argument.
fn last_action(m: &ArgMatches) -> Option<Action> {
    let mut best: Option<(usize, Action)> = None;
    for (id, _, _) in ACTIONS {
        let (Some(idx), Some(vals)) = (m.indices_of(id), m.get_many::<String>(id)) else {
            continue;
        };
        for (i, v) in idx.zip(vals) {
            let v = v.clone();
            let a = match id {
                "detach" => Action::Detach(v),
                "attach" => Action::Attach {
                    name: v,
                    host: false,
                },
                "host" => Action::Attach {
                    name: v,
                    host: true,
                },
                "info" => Action::Info(v),
                "list" => Action::List(v),
                "new" => Action::NewIf(v),
                "remove" => Action::DelIf(v),
                "poll-on" => Action::PollOn(v),
                _ => Action::PollOff(v),
            };
            if best.as_ref().is_none_or(|(b, _)| i > *b) {
                best = Some((i, a));
            }
        }
    }
    best.map(|(_, a)| a)
}

fn parse(argv: &[String]) -> Result<Cmd, clap::Error> {
    let m = command().try_get_matches_from(argv)?;
    Ok(Cmd {
        action: last_action(&m).unwrap_or(Action::ListAll),
        config: m.get_one::<String>("config").cloned(),
        mem: m.get_one::<String>("mem").cloned(),
        verbose: m.get_flag("verbose"),
    })
}

/// `-C` for -n/-a (reference `parse_ring_config`: atoi semantics are replaced by
/// strict numbers).
fn parse_ring_config(conf: Option<&str>) -> Result<RingConfig, String> {
    let mut c = RingConfig::default();
    let Some(conf) = conf.filter(|c| !c.is_empty()) else {
        return Ok(c);
    };
    for (i, tok) in conf.split(',').enumerate() {
        let v: u32 = tok
            .trim()
            .parse()
            .map_err(|_| format!("invalid number '{tok}' in '{conf}'"))?;
        let ring = || u16::try_from(v).map_err(|_| format!("ring count {v} too large"));
        match i {
            0 => (c.tx_slots, c.rx_slots) = (v, v),
            1 => c.rx_slots = v,
            2 => {
                let r = ring()?;
                (c.tx_rings, c.rx_rings) = (r, r);
            }
            3 => c.rx_rings = ring()?,
            _ => eprintln!("ignored config: {tok}"),
        }
    }
    Ok(c)
}

/// `-C` for -p: `mode,first_cpu[,ncpus]`.
fn parse_poll_config(conf: Option<&str>) -> Result<(PollingMode, u32, u32), String> {
    let conf = conf
        .filter(|c| !c.is_empty())
        .ok_or("invalid null/empty config")?;
    let mut mode = PollingMode::SingleCpu;
    let (mut first, mut n) = (0, 0);
    for (i, tok) in conf.split(',').enumerate() {
        let v: u32 = tok
            .trim()
            .parse()
            .map_err(|_| format!("invalid number '{tok}' in '{conf}'"))?;
        match i {
            0 => {
                mode = if v != 0 {
                    PollingMode::MultiCpu
                } else {
                    PollingMode::SingleCpu
                }
            }
            1 => first = v,
            2 if mode == PollingMode::MultiCpu => n = v,
            _ => return Err(format!("too many numbers in '{conf}'")),
        }
    }
    Ok((mode, first, n))
}

/// The requests vale-ctl makes (the kernel, or a fake in tests).
trait Ctl {
    fn vale_list(&self) -> Result<Vec<ValePort>, Error>;
    fn vale_list_port(&self, name: &str) -> Result<(u16, u32), Error>;
    fn port_info(&self, name: &str) -> Result<NmreqPortInfoGet, Error>;
    fn vale_attach(&self, name: &str, host: bool, c: RingConfig, mem: u16) -> Result<u32, Error>;
    fn vale_detach(&self, name: &str) -> Result<u32, Error>;
    fn vale_newif(&self, name: &str, c: RingConfig, mem: u16) -> Result<NmreqValeNewif, Error>;
    fn vale_delif(&self, name: &str) -> Result<(), Error>;
    fn polling(&self, name: &str, on: Option<(PollingMode, u32, u32)>) -> Result<(), Error>;
}

impl Ctl for Netmap {
    fn vale_list(&self) -> Result<Vec<ValePort>, Error> {
        Netmap::vale_list(self)
    }
    fn vale_list_port(&self, name: &str) -> Result<(u16, u32), Error> {
        Netmap::vale_list_port(self, name)
    }
    fn port_info(&self, name: &str) -> Result<NmreqPortInfoGet, Error> {
        Netmap::port_info(self, name)
    }
    fn vale_attach(&self, name: &str, host: bool, c: RingConfig, mem: u16) -> Result<u32, Error> {
        Netmap::vale_attach(self, name, host, c, mem)
    }
    fn vale_detach(&self, name: &str) -> Result<u32, Error> {
        Netmap::vale_detach(self, name)
    }
    fn vale_newif(&self, name: &str, c: RingConfig, mem: u16) -> Result<NmreqValeNewif, Error> {
        Netmap::vale_newif(self, name, c, mem)
    }
    fn vale_delif(&self, name: &str) -> Result<(), Error> {
        Netmap::vale_delif(self, name)
    }
    fn polling(&self, name: &str, on: Option<(PollingMode, u32, u32)>) -> Result<(), Error> {
        match on {
            Some((m, first, n)) => Netmap::vale_polling_enable(self, name, m, first, n),
            None => Netmap::vale_polling_disable(self, name),
        }
    }
}

/// `-m`: a decimal mem id, or a port whose mem id is looked up.
fn parse_mem_id(ctl: &dyn Ctl, mem: Option<&str>) -> Result<u16, String> {
    let Some(mem) = mem else {
        return Ok(0);
    };
    if mem.starts_with(|c: char| c.is_ascii_digit()) {
        return mem
            .parse::<u16>()
            .map_err(|_| format!("invalid mem id '{mem}'"));
    }
    let spec = PortSpec::parse(mem)
        .map_err(|_| format!("invalid format in '-m {mem}' (missing 'netmap:' prefix?)"))?;
    let info = ctl
        .port_info(&spec.nr_name.to_string())
        .map_err(|e| e.to_string())?;
    Ok(info.nr_mem_id)
}

/// Runs `cmd`, writing results to `out` and errors to `err`; returns the exit
/// status.
fn execute(cmd: &Cmd, ctl: &dyn Ctl, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let fail = |err: &mut dyn Write, msg: &dyn std::fmt::Display| {
        let _ = writeln!(err, "{msg}");
        1
    };
    let v = cmd.verbose;
    match &cmd.action {
        Action::ListAll => match ctl.vale_list() {
            Ok(ports) => {
                for p in ports {
                    let _ = writeln!(
                        out,
                        "{} bridge_idx {} port_idx {}",
                        p.name, p.bridge_idx, p.port_idx
                    );
                }
                0
            }
            Err(e) => fail(err, &format!("failed to list all: {}", errmsg(&e))),
        },
        Action::List(name) => {
            if !name.starts_with("vale") {
                return fail(err, &format!("invalid vale name {name}"));
            }
            match ctl.vale_list_port(name) {
                Ok((b, p)) => {
                    let _ = writeln!(out, "{name} bridge_idx {b} port_idx {p}");
                    0
                }
                Err(e) => fail(err, &e),
            }
        }
        Action::Info(name) => match ctl.port_info(name) {
            Ok(i) => {
                let _ = writeln!(
                    out,
                    "{name}: memsize {} tx_slots {} rx_slots {} tx_rings {} rx_rings {} mem_id {}",
                    i.nr_memsize,
                    i.nr_tx_slots,
                    i.nr_rx_slots,
                    i.nr_tx_rings,
                    i.nr_rx_rings,
                    i.nr_mem_id
                );
                0
            }
            Err(e) => fail(err, &e),
        },
        Action::Attach { name, host } => {
            let conf = match parse_ring_config(cmd.config.as_deref()) {
                Ok(c) => c,
                Err(e) => return fail(err, &e),
            };
            let mem = match parse_mem_id(ctl, cmd.mem.as_deref()) {
                Ok(m) => m,
                Err(e) => return fail(err, &e),
            };
            match ctl.vale_attach(name, *host, conf, mem) {
                Ok(idx) => {
                    if v {
                        let _ = writeln!(out, "{name}: attached, port_index {idx}");
                    }
                    0
                }
                Err(e) => fail(err, &e),
            }
        }
        Action::Detach(name) => match ctl.vale_detach(name) {
            Ok(idx) => {
                if v {
                    let _ = writeln!(out, "{name}: detached, port_index {idx}");
                }
                0
            }
            Err(e) => fail(err, &e),
        },
        Action::NewIf(name) => {
            let conf = match parse_ring_config(cmd.config.as_deref()) {
                Ok(c) => c,
                Err(e) => return fail(err, &e),
            };
            let mem = match parse_mem_id(ctl, cmd.mem.as_deref()) {
                Ok(m) => m,
                Err(e) => return fail(err, &e),
            };
            match ctl.vale_newif(name, conf, mem) {
                Ok(r) => {
                    if v {
                        let _ = writeln!(
                            out,
                            "{name}: created, tx_slots {} rx_slots {} tx_rings {} rx_rings {} mem_id {}",
                            r.nr_tx_slots, r.nr_rx_slots, r.nr_tx_rings, r.nr_rx_rings, r.nr_mem_id
                        );
                    }
                    0
                }
                Err(e) => fail(err, &e),
            }
        }
        Action::DelIf(name) => match ctl.vale_delif(name) {
            Ok(()) => {
                if v {
                    let _ = writeln!(out, "{name}: removed");
                }
                0
            }
            Err(e) => fail(err, &e),
        },
        Action::PollOn(name) => {
            let conf = match parse_poll_config(cmd.config.as_deref()) {
                Ok(c) => c,
                Err(e) => return fail(err, &e),
            };
            match ctl.polling(name, Some(conf)) {
                Ok(()) => 0,
                Err(e) => fail(err, &e),
            }
        }
        Action::PollOff(name) => match ctl.polling(name, None) {
            Ok(()) => 0,
            Err(e) => fail(err, &e),
        },
    }
}

/// The strerror-like part of an error.
fn errmsg(e: &Error) -> String {
    match e {
        Error::Os { errno, .. } => netmap_uapi::user::describe_errno(*errno),
        other => other.to_string(),
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let cmd = match parse(&argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp => ExitCode::SUCCESS,
                _ => ExitCode::from(1),
            };
        }
    };
    if let Action::List(name) = &cmd.action
        && !name.starts_with("vale")
    {
        // Checked before opening the device, like the reference.
        eprintln!("invalid vale name {name}");
        return ExitCode::from(1);
    }
    let ctl = match Netmap::open() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vale-ctl: {e}");
            return ExitCode::from(1);
        }
    };
    let code = execute(&cmd, &ctl, &mut std::io::stdout(), &mut std::io::stderr());
    ExitCode::from(code)
}

#[cfg(test)]
mod tests;
