//! Parser, execution and golden listing tests.

use super::*;
use crate::model::{Rates, Scheduler, Stats};

fn p(line: &str) -> Result<Command, AdmError> {
    parse(&split_line(line))
}
fn perr(line: &str) -> String {
    p(line).unwrap_err().message
}
fn key(proto: Protocol, s: &str) -> ServiceKey {
    ServiceKey {
        proto,
        addr: s.parse().unwrap(),
        fwmark: 0,
    }
}
fn run(m: &mut Model, line: &str) -> Result<String, AdmError> {
    let cmd = p(line)?;
    match execute(m, &cmd, &[], "")? {
        Outcome::Text(t) => Ok(t),
        Outcome::Extra(_) => Ok(String::new()),
    }
}

#[test]
fn add_service_defaults_and_long_options() {
    let k = key(Protocol::Tcp, "198.18.0.1:80");
    let want = Command::AddService(ServiceSpec {
        key: k,
        scheduler: Some("wlc".into()),
        flags: None,
        persistent: None,
        netmask: None,
        ops: false,
        synproxy: false,
        toa: false,
        proxy_protocol: None,
    });
    assert_eq!(p("-A -t 198.18.0.1:80").unwrap(), want);
    assert_eq!(p("-At 198.18.0.1:80").unwrap(), want);
    assert_eq!(
        p("--add-service --tcp-service=198.18.0.1:80").unwrap(),
        want
    );
    assert_eq!(
        p("--add-service --tcp-service 198.18.0.1:80 --scheduler rr --persistent").unwrap(),
        Command::AddService(ServiceSpec {
            key: k,
            scheduler: Some("rr".into()),
            flags: None,
            persistent: Some(360),
            netmask: None,
            ops: false,
            synproxy: false,
            toa: false,
            proxy_protocol: None,
        })
    );
    assert_eq!(
        p("-A -u [2001:db8::1]:53 -s sh -b sh-fallback,sh-port -p 600 -M 64").unwrap(),
        Command::AddService(ServiceSpec {
            key: key(Protocol::Udp, "[2001:db8::1]:53"),
            scheduler: Some("sh".into()),
            flags: Some(SchedFlags {
                sh_fallback: true,
                sh_port: true,
                ..Default::default()
            }),
            persistent: Some(600),
            netmask: Some(Netmask::V6(64)),
            ops: false,
            synproxy: false,
            toa: false,
            proxy_protocol: None,
        })
    );
    // -p without a value, followed by another option
    match p("-A -t 198.18.0.1:0 -p -M 255.255.255.0").unwrap() {
        Command::AddService(s) => {
            assert_eq!(s.persistent, Some(360), "ipvsadm's 6 * 60");
            assert_eq!(
                s.netmask,
                Some(Netmask::V4("255.255.255.0".parse().unwrap()))
            );
        }
        c => panic!("{c:?}"),
    }
}

#[test]
fn real_server_parsing() {
    let k = key(Protocol::Tcp, "198.18.0.1:80");
    assert_eq!(
        p("-a -t 198.18.0.1:80 -r 198.19.0.2:8080 -m -w 3 -x 100 -y 50").unwrap(),
        Command::AddServer(
            k,
            RealSpec {
                addr: "198.19.0.2:8080".parse().unwrap(),
                forward: Some(Forward::Masq),
                weight: Some(3),
                u_threshold: Some(100),
                l_threshold: Some(50),
                tunnel: Default::default(),
            }
        )
    );
    // no port: the virtual port; -g (default) forces the virtual port
    for line in [
        "-a -t 198.18.0.1:80 -r 198.19.0.2",
        "-a -t 198.18.0.1:80 -r 198.19.0.2:8080",
        "--add-server --tcp-service 198.18.0.1:80 --real-server 198.19.0.2:81 --gatewaying",
    ] {
        match p(line).unwrap() {
            Command::AddServer(_, r) => {
                assert_eq!(r.addr, "198.19.0.2:80".parse().unwrap());
                assert_eq!(r.forward, Some(Forward::Route));
                assert_eq!(r.weight, Some(1));
            }
            c => panic!("{c:?}"),
        }
    }
    // DPVS: -b on a real server is FullNAT
    match p("-a -t 198.18.0.1:80 -r 198.19.0.2:8080 -b").unwrap() {
        Command::AddServer(_, r) => {
            assert_eq!(r.forward, Some(Forward::FullNat));
            assert_eq!(r.addr.port(), 8080);
        }
        c => panic!("{c:?}"),
    }
    // -e fills in ipvsadm's defaults like -a: -g (so the virtual port),
    // no thresholds
    match p("-e -t 198.18.0.1:80 -r 198.19.0.2:8080 -w 0").unwrap() {
        Command::EditServer(_, r) => {
            assert_eq!(r.addr, "198.19.0.2:80".parse().unwrap());
            assert_eq!(r.forward, Some(Forward::Route));
            assert_eq!(r.weight, Some(0));
            assert_eq!((r.u_threshold, r.l_threshold), (Some(0), Some(0)));
        }
        c => panic!("{c:?}"),
    }
    match p("-e -t 198.18.0.1:80 -r 198.19.0.2:8080 -m").unwrap() {
        Command::EditServer(_, r) => {
            assert_eq!(r.addr, "198.19.0.2:8080".parse().unwrap());
            assert_eq!(r.weight, Some(1));
        }
        c => panic!("{c:?}"),
    }
    // -d keeps the port it is given
    assert_eq!(
        p("-d -t 198.18.0.1:80 -r 198.19.0.2:8080").unwrap(),
        Command::DeleteServer(k, "198.19.0.2:8080".parse().unwrap())
    );
    assert_eq!(
        p("-d -u [2001:db8::1]:53 -r [2001:db8::10]:53").unwrap(),
        Command::DeleteServer(
            key(Protocol::Udp, "[2001:db8::1]:53"),
            "[2001:db8::10]:53".parse().unwrap()
        )
    );
}

#[test]
fn other_commands() {
    assert_eq!(p("-C").unwrap(), Command::Clear);
    assert_eq!(p("-Z").unwrap(), Command::Zero(None));
    let save = |numeric, origin| Command::Save { numeric, origin };
    assert_eq!(p("-S -n").unwrap(), save(true, false));
    assert_eq!(p("-Sn").unwrap(), save(true, false));
    assert_eq!(p("-S --origin").unwrap(), save(false, true));
    assert_eq!(p("-R").unwrap(), Command::Restore);
    assert_eq!(
        p("--set 900 120 300").unwrap(),
        Command::SetTimeouts(Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300
        })
    );
    assert_eq!(
        parse::<&str>(&[]).unwrap(),
        Command::List(ListOptions::default())
    );
    match p("-Ln --stats --exact -t 198.18.0.1:80").unwrap() {
        Command::List(o) => {
            assert!(o.numeric && o.stats && o.exact);
            assert_eq!(o.service, Some(key(Protocol::Tcp, "198.18.0.1:80")));
        }
        c => panic!("{c:?}"),
    }
    match p("-l -c --persistent-conn").unwrap() {
        Command::List(o) => assert!(o.connections && o.persistent_conn),
        c => panic!("{c:?}"),
    }
    assert_eq!(
        p("--add-laddr -t 198.18.0.1:80 -z 198.18.1.1 -F dpdk0").unwrap(),
        Command::AddLaddr(
            key(Protocol::Tcp, "198.18.0.1:80"),
            LocalAddr {
                addr: "198.18.1.1".parse().unwrap(),
                ifname: "dpdk0".into()
            }
        )
    );
    assert_eq!(p("--get-laddr").unwrap(), Command::GetLaddr(None));
    assert_eq!(p("--drops").unwrap(), Command::Extra(Extra::Drops));
    assert_eq!(p("--workers -n").unwrap(), Command::Extra(Extra::Workers));
    assert_eq!(p("-h").unwrap(), Command::Help);
}

#[test]
fn usage_errors_read_like_ipvsadm() {
    let cases = [
        ("-L --foo", "--foo: unknown option"),
        // popt fails on the first option: ipvsadm prints only the hint
        ("--foo", "Try `rvsadm -h' or 'rvsadm --help' for more information."),
        ("-K -L", "Try `rvsadm -h' or 'rvsadm --help' for more information."),
        ("-L -K", "-K: unknown option"),
        ("-A -t", "-t: missing argument"),
        ("-n -L", "Try `rvsadm -h' or 'rvsadm --help' for more information."),
        ("-A -t 198.18.0.1:80 -D", "multiple commands specified"),
        ("-A -t 198.18.0.1:80 -s rr -s wrr", "multiple 'scheduler' options specified"),
        ("-A -t 198.18.0.999:80", "illegal virtual server address[:port] specified"),
        ("-A -t 80", "illegal virtual server address[:port] specified"),
        ("-A -t [2001:db8::1]x", "illegal virtual server address[:port] specified"),
        ("-A -t 198.18.0.1:70000", "illegal virtual server address[:port] specified"),
        ("-a -t 198.18.0.1:80 -r nope", "illegal real server address[:port] specified"),
        ("-a -t 198.18.0.1:80 -r 198.19.0.2 -w 65536", "illegal weight specified"),
        ("-a -t 198.18.0.1:80 -r 198.19.0.2 -w -1", "illegal weight specified"),
        ("-a -t 198.18.0.1:80 -r 198.19.0.2 -w x", "illegal weight specified"),
        ("-a -t 198.18.0.1:80 -r 198.19.0.2 -x 1e3", "illegal u_threshold specified"),
        ("-a -t 198.18.0.1:80 -r 198.19.0.2 -y z", "illegal l_threshold specified"),
        (
            "-a -r 198.19.0.2",
            "You need to supply the 'service-address' option for the 'add-server' command",
        ),
        (
            "-a -t 198.18.0.1:80",
            "You need to supply the 'real-server' option for the 'add-server' command",
        ),
        (
            "-A -t 198.18.0.1:80 -r 198.19.0.2",
            "Illegal 'real-server' option with the 'add-service' command",
        ),
        ("-D -t 198.18.0.1:80 -s rr", "Illegal 'scheduler' option with the 'delete-service' command"),
        (
            "-L -c -t 198.18.0.1:80",
            "The option 'service-address' conflicts with the 'connection' option in the 'list' command",
        ),
        ("-L -c --stats", "options conflicts in the list command"),
        ("-A -t 198.18.0.1:80 -p 0", "invalid timeout value `0' specified"),
        ("-A -t 198.18.0.1:80 -p 99999999", "invalid timeout value `99999999' specified"),
        ("-A -t 198.18.0.1:80 -p -M 255.255.0", "illegal virtual server persistent mask specified"),
        ("-A -t [2001:db8::1]:80 -p -M 129", "illegal ipv6 netmask specified"),
        ("-A -t 198.18.0.1", "Zero port specified for non-persistent service"),
        ("-A -t 198.18.0.1:80 -s sh -b sh-foo", "invalid scheduler flag `sh-foo'"),
        ("-A -t 198.18.0.1:80 -s rr -b sh-port", "incompatible scheduler flag `sh-port'"),
        ("-A -t 198.18.0.1:80 -b sh-port", "incompatible scheduler flag `sh-port'"),
        ("--set 900 120", "--set option requires 3 timeout values"),
        ("--set 900 120 x", "invalid timeout value `x' specified"),
        ("-C extra", "unexpected argument extra"),
        ("--add-laddr -t 198.18.0.1:80 -z 198.18.1.1", "You need to supply the 'ifname' option for the 'add-laddr' command"),
        ("--add-laddr -t 198.18.0.1:80 -z bad -F d0", "illegal local address"),
        ("-L --numeric=1", "--numeric=1: option does not take an argument"),
    ];
    for (line, want) in cases {
        let e = p(line).unwrap_err();
        assert_eq!(e.message, want, "for `{line}`");
        // ipvsadm: fail(2, ...) for usage errors; popt's own errors and
        // the "Try ..." hint return -1 (255)
        let popt = [
            "unknown option",
            "missing argument",
            "does not take an argument",
        ]
        .iter()
        .any(|w| want.ends_with(w))
            || want.starts_with("Try");
        assert_eq!(e.status, if popt { 255 } else { 2 }, "for `{line}`");
    }
    assert_eq!(p("-A -t 198.18.0.1:80 -w 1").unwrap_err().status, 2);
}

#[test]
fn operation_errors_leave_model_untouched() {
    let mut m = Model::new();
    run(&mut m, "-A -t 198.18.0.1:80 -s rr").unwrap();
    run(&mut m, "-a -t 198.18.0.1:80 -r 198.19.0.2:80 -m").unwrap();
    let before = m.clone();
    let cases = [
        ("-A -t 198.18.0.2:80 -s foo", "Scheduler not found"),
        ("-E -t 198.18.0.1:80 -s foo", "Scheduler not found"),
        ("-A -t 198.18.0.1:80 -s wrr", "Service already exists"),
        ("-E -t 198.18.0.9:80 -s rr", "No such service"),
        ("-D -t 198.18.0.9:80", "No such service"),
        ("-Z -t 198.18.0.9:80", "No such service"),
        ("-a -t 198.18.0.9:80 -r 198.19.0.2", "Service not defined"),
        ("-a -u 198.18.0.1:80 -r 198.19.0.2", "Service not defined"),
        (
            "-a -t 198.18.0.1:80 -r 198.19.0.2 -m -w 5",
            "Destination already exists",
        ),
        (
            "-e -t 198.18.0.1:80 -r 198.19.0.3 -w 5",
            "No such destination",
        ),
        ("-d -t 198.18.0.1:80 -r 198.19.0.3", "No such destination"),
        (
            "-E -t 198.18.0.1:80 -b sh-port",
            "incompatible scheduler flag `sh-port'",
        ),
        ("-L -t 198.18.0.9:80", "No such service"),
        (
            "--del-laddr -t 198.18.0.1:80 -z 198.18.1.1 -F d0",
            "No such Local address",
        ),
        (
            "--add-laddr -t 198.18.0.9:80 -z 198.18.1.1 -F d0",
            "Service not defined",
        ),
    ];
    for (line, want) in cases {
        assert_eq!(run(&mut m, line).unwrap_err().message, want, "for `{line}`");
        assert_eq!(m, before, "model changed by `{line}`");
    }
}

#[test]
fn edit_replaces_like_ipvsadm() {
    let mut m = Model::new();
    run(
        &mut m,
        "-A -t 198.18.0.1:80 -s sh -b sh-port -p 600 -M 255.255.255.0",
    )
    .unwrap();
    run(
        &mut m,
        "-a -t 198.18.0.1:80 -r 198.19.0.2:8080 -m -w 3 -x 90 -y 10",
    )
    .unwrap();
    run(&mut m, "-a -t 198.18.0.1:80 -r 198.19.0.3:80 -i -w 4").unwrap();
    // -e without -m: -g, so the virtual port, which is not 8080
    assert_eq!(
        run(&mut m, "-e -t 198.18.0.1:80 -r 198.19.0.2:8080 -w 7")
            .unwrap_err()
            .message,
        "No such destination"
    );
    // -e without -w, -x, -y: weight 1, no thresholds
    run(&mut m, "-e -t 198.18.0.1:80 -r 198.19.0.2:8080 -m").unwrap();
    // -e without a forwarding switch: back to -g
    run(&mut m, "-e -t 198.18.0.1:80 -r 198.19.0.3:80 -w 4").unwrap();
    // -E with only -s: no persistence, no mask, no flags
    run(&mut m, "-E -t 198.18.0.1:80 -s rr").unwrap();
    assert_eq!(
        run(&mut m, "-S -n").unwrap(),
        "-A -t 198.18.0.1:80 -s rr\n\
         -a -t 198.18.0.1:80 -r 198.19.0.2:8080 -m -w 1\n\
         -a -t 198.18.0.1:80 -r 198.19.0.3:80 -g -w 4\n"
    );
    // -E without -s: wlc; its flags are checked against wlc, as ipvsadm does
    run(&mut m, "-E -t 198.18.0.1:80 -p").unwrap();
    assert_eq!(m.services[0].scheduler, Scheduler::Wlc);
    assert_eq!(m.services[0].persistent, Some(360));
    assert_eq!(
        perr("-E -t 198.18.0.1:80 -b sh-port"),
        "incompatible scheduler flag `sh-port'"
    );
    run(&mut m, "-E -t 198.18.0.1:80 -s sh -b sh-fallback").unwrap();
    assert_eq!(m.services[0].scheduler, Scheduler::Sh);
    assert!(m.services[0].flags.sh_fallback);
    assert_eq!(m.services[0].persistent, None);
}

#[test]
fn other_family_real_server_needs_a_tunnel() {
    for line in [
        "-a -t 198.18.0.1:80 -r [2001:db8::2]:80 -m",
        "-e -t [2001:db8::1]:80 -r 198.19.0.2 -w 2",
        "-a -u 198.18.0.1:53 -r 2001:db8::2 -b",
    ] {
        let e = p(line).unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.status),
            (
                "Different address family is allowed only for tunneling servers",
                2
            ),
            "for `{line}`"
        );
    }
    // a tunnel passes ipvsadm's check and the model's: IPVS's
    // heterogeneous pools (ipvsadm 1.31 with a kernel since 3.18)
    let mut m = Model::new();
    run(&mut m, "-A -t 198.18.0.1:80").unwrap();
    run(&mut m, "-a -t 198.18.0.1:80 -r [2001:db8::2]:80 -i").unwrap();
    run(&mut m, "-A -u [2001:db8::1]:53 -s rr").unwrap();
    run(
        &mut m,
        "-a -u [2001:db8::1]:53 -r 198.19.0.7 -i --tun-type gue --tun-port 6080 --tun-csum",
    )
    .unwrap();
    // an edit to another method is refused with ipvsadm's message
    for line in [
        "-e -t 198.18.0.1:80 -r [2001:db8::2]:80 -m",
        "-e -t 198.18.0.1:80 -r [2001:db8::2]:80 -w 3",
    ] {
        let e = run(&mut m, line).unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.status),
            (
                "Different address family is allowed only for tunneling servers",
                2
            ),
            "for `{line}`"
        );
    }
    // listed as ipvsadm prints them: the real server in its own family's
    // notation, the IPv4 service's 28-column cut not reached
    let plain = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n\
\x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
TCP  198.18.0.1:80 wlc\n\
\x20 -> [2001:db8::2]:80             Tunnel  1      0          0         \n\
UDP  [2001:db8::1]:53 rr\n\
\x20 -> 198.19.0.7:53                Tunnel  1      0          0         \n";
    assert_eq!(run(&mut m, "-Ln").unwrap(), plain);
    let info = run(&mut m, "-Ln --tun-info").unwrap();
    assert!(
        info.contains("\n  -> [2001:db8::2]:80             Tunnel  ipip          1      0          0         \n"),
        "{info}"
    );
    assert!(
        info.contains("\n  -> 198.19.0.7:53                Tunnel  gue:6080:+c   1      0          0         \n"),
        "{info}"
    );
    let save = run(&mut m, "-S -n").unwrap();
    assert_eq!(
        save,
        "-A -t 198.18.0.1:80 -s wlc\n\
-a -t 198.18.0.1:80 -r [2001:db8::2]:80 -i -w 1 --tun-type ipip\n\
-A -u [2001:db8::1]:53 -s rr\n\
-a -u [2001:db8::1]:53 -r 198.19.0.7:53 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum\n"
    );
    // and -S replays to the same rules
    let mut again = Model::new();
    restore(&mut again, &save).unwrap();
    assert_eq!(run(&mut again, "-S -n").unwrap(), save);
}

fn sample() -> Model {
    let mut m = Model::new();
    restore(
        &mut m,
        "-A -t 198.18.0.1:80 -s rr\n\
         -a -t 198.18.0.1:80 -r 198.19.0.3:8080 -m -w 2\n\
         -a -t 198.18.0.1:80 -r 198.19.0.2:80 -m -w 1\n\
         -A -u 198.18.0.1:53 -s wlc -p 300 -M 255.255.255.0\n\
         -a -u 198.18.0.1:53 -r 198.19.0.4 -g -w 1\n\
         -A -t [2001:db8::1]:443 -s sh -b sh-port\n\
         -a -t [2001:db8::1]:443 -r [2001:db8::10] -i -w 100\n",
    )
    .unwrap();
    m.services[0].reals[0].active_conns = 5;
    m.services[0].reals[0].inact_conns = 3;
    m
}

#[test]
fn golden_plain_listing() {
    let m = sample();
    let want = "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  198.18.0.1:80 rr\n  -> 198.19.0.2:80                Masq    1      0          0         \n  -> 198.19.0.3:8080              Masq    2      5          3         \nUDP  198.18.0.1:53 wlc persistent 300 mask 255.255.255.0\n  -> 198.19.0.4:53                Route   1      0          0         \nTCP  [2001:db8::1]:443 sh (sh-port)\n  -> [2001:db8::10]:443           Tunnel  100    0          0         \n";
    assert_eq!(list::list(&m, &ListOptions::default(), &[]).unwrap(), want);
    let mut m2 = m.clone();
    assert_eq!(run(&mut m2, "-Ln").unwrap(), want);
    assert_eq!(run(&mut m2, "").unwrap(), want);
}

#[test]
fn origin_only_with_the_rvs_flag() {
    let mut m = sample();
    m.services[1].origin = crate::model::Origin::Config;
    // without --origin the listing is ipvsadm's (golden_plain_listing)
    let l = run(&mut m, "-Ln --origin").unwrap();
    assert!(l.contains("TCP  198.18.0.1:80 rr origin rvsadm\n"), "{l}");
    assert!(
        l.contains("UDP  198.18.0.1:53 wlc persistent 300 mask 255.255.255.0 origin config\n"),
        "{l}"
    );
    let st = run(&mut m, "-Ln --stats --origin -t [2001:db8::1]:443").unwrap();
    assert!(
        st.lines().nth(2).unwrap().ends_with(" origin rvsadm"),
        "{st}"
    );
    assert_eq!(
        perr("-Lc --origin"),
        "options conflicts in the list command"
    );
    assert_eq!(
        perr("--drops --origin"),
        "Illegal 'origin' option with the 'drops' command"
    );
    // -S --origin: comment lines, which -R skips
    let saved = run(&mut m, "-S --origin").unwrap();
    assert!(
        saved.starts_with("# origin rvsadm\n-A -t 198.18.0.1:80 -s rr\n"),
        "{saved}"
    );
    assert!(
        saved.contains("# origin config\n-A -u 198.18.0.1:53"),
        "{saved}"
    );
    let mut back = Model::new();
    restore(&mut back, &saved).unwrap();
    assert_eq!(list::save(&back), list::save(&m));
}

fn one_service() -> Model {
    let mut m = Model::new();
    restore(
        &mut m,
        "-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.19.0.2:80 -m -w 1 -x 1000 -y 800\n",
    )
    .unwrap();
    m
}

#[test]
fn golden_stats_and_exact() {
    let mut m = one_service();
    let st = Stats {
        conns: 12,
        inpkts: 345678,
        outpkts: 123456789,
        inbytes: 98765432100,
        outbytes: 123456789012345,
    };
    m.services[0].stats = st;
    m.services[0].reals[0].stats = st;
    let want = "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\nTCP  198.18.0.1:80                      12   345678  123456K   98765M     123T\n  -> 198.19.0.2:80                      12   345678  123456K   98765M     123T\n";
    assert_eq!(run(&mut m, "-L -n --stats").unwrap(), want);
    let want = "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\nTCP  198.18.0.1:80                      12   345678 123456789 98765432100 123456789012345\n  -> 198.19.0.2:80                      12   345678 123456789 98765432100 123456789012345\n";
    assert_eq!(run(&mut m, "-L -n --stats --exact").unwrap(), want);
    // -Z zeroes them
    run(&mut m, "-Z").unwrap();
    assert_eq!(m.services[0].stats, Stats::default());
    assert_eq!(m.services[0].reals[0].stats, Stats::default());
}

#[test]
fn golden_rate() {
    let mut m = one_service();
    let r = Rates {
        cps: 10,
        inpps: 2000,
        outpps: 1500,
        inbps: 250000000,
        outbps: 3000000,
    };
    m.services[0].rates = r;
    m.services[0].reals[0].rates = r;
    let want = "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n  -> RemoteAddress:Port\nTCP  198.18.0.1:80                      10     2000     1500  250000K  3000000\n  -> 198.19.0.2:80                      10     2000     1500  250000K  3000000\n";
    assert_eq!(run(&mut m, "-L -n --rate").unwrap(), want);
}

#[test]
fn golden_thresholds_and_persistent_conn() {
    let mut m = one_service();
    {
        let r = &mut m.services[0].reals[0];
        r.active_conns = 7;
        r.inact_conns = 2;
        r.persist_conns = 4;
    }
    let want = "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n  -> RemoteAddress:Port\nTCP  198.18.0.1:80 rr\n  -> 198.19.0.2:80                1000       800        7          2         \n";
    assert_eq!(
        run(&mut m, "-L -n --thresholds -t 198.18.0.1:80").unwrap(),
        want
    );
    let want = "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n  -> RemoteAddress:Port\nTCP  198.18.0.1:80 rr\n  -> 198.19.0.2:80                1         4           7          2         \n";
    assert_eq!(
        run(&mut m, "-L -n --persistent-conn -t 198.18.0.1:80").unwrap(),
        want
    );
}

#[test]
fn golden_connections_and_timeout() {
    let conns = [
        ConnEntry {
            proto: Protocol::Tcp,
            expire_secs: 899,
            state: "ESTABLISHED".into(),
            client: "198.18.200.7:40000".parse().unwrap(),
            virt: "198.18.0.1:80".parse().unwrap(),
            dest: "198.19.0.2:80".parse().unwrap(),
            seq_delta: None,
        },
        ConnEntry {
            proto: Protocol::Udp,
            expire_secs: 245,
            state: "UDP".into(),
            client: "[2001:db8::99]:5353".parse().unwrap(),
            virt: "[2001:db8::1]:53".parse().unwrap(),
            dest: "[2001:db8::10]:53".parse().unwrap(),
            seq_delta: None,
        },
        ConnEntry {
            proto: Protocol::Tcp,
            expire_secs: 60,
            state: "ESTABLISHED".into(),
            client: "198.18.200.8:40001".parse().unwrap(),
            virt: "198.18.0.1:80".parse().unwrap(),
            dest: "198.19.0.2:80".parse().unwrap(),
            seq_delta: Some((28, -16)),
        },
    ];
    let want = "IPVS connection entries\npro expire state       source             virtual            destination\nTCP 14:59  ESTABLISHED 198.18.200.7:40000 198.18.0.1:80      198.19.0.2:80\nUDP 04:05  UDP         [2001:db8::99]:5353 [2001:db8::1]:53   [2001:db8::10]:53\nTCP 01:00  ESTABLISHED 198.18.200.8:40001 198.18.0.1:80      198.19.0.2:80 seqadj in:+28 out:-16\n";
    let mut m = Model::new();
    let cmd = p("-L -n -c").unwrap();
    assert_eq!(
        execute(&mut m, &cmd, &conns, "").unwrap(),
        Outcome::Text(want.into())
    );
    run(&mut m, "--set 1000 0 60").unwrap();
    assert_eq!(
        run(&mut m, "-L --timeout").unwrap(),
        "Timeout (tcp tcpfin udp): 1000 120 60\n"
    );
}

#[test]
fn golden_save_and_round_trip() {
    let mut m = sample();
    run(&mut m, "--add-laddr -t 198.18.0.1:80 -z 198.18.1.1 -F d0").unwrap();
    run(
        &mut m,
        "-a -t 198.18.0.1:80 -r 198.19.0.5:9000 -b -w 4 -x 10",
    )
    .unwrap();
    let want = "-A -t 198.18.0.1:80 -s rr\n\
-a -t 198.18.0.1:80 -r 198.19.0.2:80 -m -w 1\n\
-a -t 198.18.0.1:80 -r 198.19.0.3:8080 -m -w 2\n\
-a -t 198.18.0.1:80 -r 198.19.0.5:9000 -b -w 4 -x 10\n\
--add-laddr -t 198.18.0.1:80 -z 198.18.1.1 -F d0\n\
-A -u 198.18.0.1:53 -s wlc -p 300 -M 255.255.255.0\n\
-a -u 198.18.0.1:53 -r 198.19.0.4:53 -g -w 1\n\
-A -t [2001:db8::1]:443 -s sh -b sh-port\n\
-a -t [2001:db8::1]:443 -r [2001:db8::10]:443 -i -w 100 --tun-type ipip\n";
    let saved = run(&mut m, "-S -n").unwrap();
    assert_eq!(saved, want);
    let mut back = Model::new();
    restore(&mut back, &saved).unwrap();
    assert_eq!(list::save(&back), saved);
    assert_eq!(back.sorted().len(), 3);
    // the restored rules list the same (counters aside)
    assert_eq!(
        list::list(&back, &ListOptions::default(), &[]).unwrap(),
        list::list(&m.clone(), &ListOptions::default(), &[])
            .unwrap()
            .replace("5          3         ", "0          0         ")
    );
    // through execute with stdin too
    let mut via = Model::new();
    execute(&mut via, &Command::Restore, &[], &saved).unwrap();
    assert_eq!(list::save(&via), saved);
}

#[test]
fn help_says_how_restore_and_reload_differ_from_ipvsadm() {
    let h = usage();
    assert!(
        h.contains(
            "  -R applies all lines or none: a bad line (its number is printed) leaves\n     \
             the running rules untouched; ipvsadm applies line by line and keeps\n     \
             the lines before a bad one."
        ),
        "{h}"
    );
    assert!(h.contains("  --origin  "), "{h}");
    assert!(h.contains("services made with rvsadm stay"), "{h}");
}

#[test]
fn restore_is_all_or_nothing() {
    let mut m = one_service();
    let before = m.clone();
    let e = restore(
        &mut m,
        "# comment\n\n-A -t 198.18.0.2:80 -s rr\n-a -t 198.18.0.2:80 -r 198.19.0.9\n-A -t 198.18.0.1:80\n",
    )
    .unwrap_err();
    assert_eq!(e.message, "line 5: Service already exists");
    assert_eq!(m, before);
    let e = restore(
        &mut m,
        "-A -t 198.18.0.3:80\n-a -t 198.18.0.3:80 -r 198.19.0.9 -w 99999\n",
    )
    .unwrap_err();
    assert_eq!(e.message, "line 2: illegal weight specified");
    assert_eq!(m, before);
    let e = restore(&mut m, "-L -n\n").unwrap_err();
    assert!(e.message.starts_with("line 1: only rule commands"));
    // the program name in front is accepted, as config_stream does
    restore(&mut m, "ipvsadm -A -t 198.18.0.4:80 -s rr\n").unwrap();
    assert_eq!(m.services.len(), 2);
}

#[test]
fn long_ipv4_names_are_cut_like_ipvsadm() {
    // svc_name is cut at 33 and dname at 28 characters for IPv4 only
    let mut m = Model::new();
    run(&mut m, "-A -u 198.18.100.100:65535 -s rr").unwrap();
    run(
        &mut m,
        "-a -u 198.18.100.100:65535 -r 198.19.100.100:65535 -m",
    )
    .unwrap();
    let out = run(&mut m, "-L -n").unwrap();
    assert!(out.contains("UDP  198.18.100.100:65535 rr\n"));
    assert!(
        out.contains("  -> 198.19.100.100:65535         Masq    1      0          0         \n")
    );
}

#[test]
fn get_laddr_listing() {
    let mut m = one_service();
    run(&mut m, "--add-laddr -t 198.18.0.1:80 -z 198.18.1.1 -F d0").unwrap();
    let want = "VIP:VPORT            TOTAL    LADDR                CONFLICTS  CONNS     \n198.18.0.1:80        1        \n                              198.18.1.1           0          0         \n";
    assert_eq!(run(&mut m, "--get-laddr").unwrap(), want);
}

#[test]
fn parser_never_panics_on_token_soup() {
    let pool = [
        "-A",
        "-E",
        "-D",
        "-a",
        "-e",
        "-d",
        "-L",
        "-Z",
        "-S",
        "-R",
        "-C",
        "--set",
        "-t",
        "-u",
        "-r",
        "-s",
        "-p",
        "-M",
        "-b",
        "-w",
        "-x",
        "-y",
        "-m",
        "-g",
        "-i",
        "-n",
        "-c",
        "-z",
        "-F",
        "--stats",
        "--rate",
        "--exact",
        "--timeout",
        "--sched-flags",
        "--fullnat",
        "198.18.0.1:80",
        "[2001:db8::1]:80",
        "2001:db8::1",
        "[",
        "]:",
        "sh-port",
        "rr",
        "0",
        "65536",
        "",
        "-",
        "--",
        "-Lnc",
        "-At",
        "é",
        "-é",
        "--=",
        "--weight=",
        "1:2:3",
    ];
    let mut m = Model::new();
    let n = pool.len();
    for a in 0..n {
        for b in 0..n {
            for c in (0..n).step_by(3) {
                let args = [pool[a], pool[b], pool[c], pool[(a + b + c) % n]];
                if let Ok(cmd) = parse(&args) {
                    let _ = execute(&mut m, &cmd, &[], "");
                }
            }
        }
    }
}

#[test]
fn sync_daemon_commands() {
    assert_eq!(
        p("--start-daemon master --mcast-interface eth0 --syncid 1").unwrap(),
        Command::Sync(SyncCmd::Start {
            state: DaemonState::Master,
            interface: Some("eth0".into()),
            syncid: Some(1),
            group: None,
            port: None,
            ttl: None,
        })
    );
    assert_eq!(
        p("--start-daemon=backup --mcast-group 224.0.0.82 --mcast-port=9000 --mcast-ttl 2")
            .unwrap(),
        Command::Sync(SyncCmd::Start {
            state: DaemonState::Backup,
            interface: None,
            syncid: None,
            group: Some("224.0.0.82".parse().unwrap()),
            port: Some(9000),
            ttl: Some(2),
        })
    );
    assert_eq!(
        p("--stop-daemon backup").unwrap(),
        Command::Sync(SyncCmd::Stop(DaemonState::Backup))
    );
    assert_eq!(p("-L --daemon").unwrap(), Command::Sync(SyncCmd::List));
    assert_eq!(p("-Ln --daemon").unwrap(), Command::Sync(SyncCmd::List));
    assert_eq!(p("--sync-stats").unwrap(), Command::Sync(SyncCmd::Stats));
    assert_eq!(p("-L --sync-stats").unwrap(), Command::Sync(SyncCmd::Stats));
    assert!(perr("--start-daemon both").contains("illegal start-daemon"));
    assert!(perr("--start-daemon master --syncid 256").contains("syncid"));
    assert!(perr("--start-daemon master --mcast-group 10.0.0.1").contains("mcast-group"));
    assert!(perr("--stop-daemon master --syncid 1").contains("Illegal"));
    assert!(perr("--start-daemon").contains("missing"));
    // nothing else changed: a plain listing is still a listing
    assert!(matches!(p("-L -n").unwrap(), Command::List(_)));
    assert!(!Command::Sync(SyncCmd::List).is_rule());
}

/// One-packet scheduling: `-o`/`--ops` on UDP services only (ipvsadm
/// 1.31 fails with status 2 for a TCP service), listed as ipvsadm 1.31's
/// print_service_entry does: ` ops` after the persistence part in `-L`,
/// ` -o` after `-p`/`-M` and before `-b` in `-S`.
#[test]
fn ops_parse_list_save_like_ipvsadm_131() {
    match p("-A -u 198.18.0.1:53 -s rr -o").unwrap() {
        Command::AddService(s) => assert!(s.ops),
        c => panic!("{c:?}"),
    }
    match p("--add-service --udp-service 198.18.0.1:53 --ops").unwrap() {
        Command::AddService(s) => assert!(s.ops),
        c => panic!("{c:?}"),
    }
    let e = p("-A -t 198.18.0.1:80 -o").unwrap_err();
    assert_eq!(
        (e.message.as_str(), e.status),
        ("One-Packet Scheduling is only for UDP virtual services", 2)
    );
    assert_eq!(
        perr("-E -t 198.18.0.1:80 --ops"),
        "One-Packet Scheduling is only for UDP virtual services"
    );
    assert_eq!(
        perr("-a -u 198.18.0.1:53 -r 198.19.0.2 -o"),
        "Illegal 'ops' option with the 'add-server' command"
    );
    assert_eq!(
        perr("-A -u 198.18.0.1:53 -o -o"),
        "multiple 'ops' options specified"
    );

    let mut m = Model::new();
    run(&mut m, "-A -u 198.18.0.1:53 -s rr -o").unwrap();
    run(&mut m, "-a -u 198.18.0.1:53 -r 198.19.0.2 -m").unwrap();
    run(
        &mut m,
        "-A -u [2001:db8::1]:53 -s sh -b sh-port -o -p 300 -M 64",
    )
    .unwrap();
    assert!(m.services.iter().all(|s| s.ops));
    let l = run(&mut m, "-Ln").unwrap();
    assert!(l.contains("\nUDP  198.18.0.1:53 rr ops\n"), "{l}");
    assert!(
        l.contains("\nUDP  [2001:db8::1]:53 sh (sh-port) persistent 300 mask 64 ops\n"),
        "{l}"
    );
    let saved = run(&mut m, "-S -n").unwrap();
    assert_eq!(
        saved,
        "-A -u 198.18.0.1:53 -s rr -o\n\
         -a -u 198.18.0.1:53 -r 198.19.0.2:53 -m -w 1\n\
         -A -u [2001:db8::1]:53 -s sh -p 300 -M 64 -o -b sh-port\n"
    );
    // -R reads -S back to the same model
    let mut back = Model::new();
    restore(&mut back, &saved).unwrap();
    assert_eq!(list::save(&back), saved);
    // -E without -o clears it, as IPVS replaces the service flags
    run(&mut m, "-E -u 198.18.0.1:53 -s rr").unwrap();
    assert!(!m.services[0].ops);
    assert!(run(&mut m, "-Ln")
        .unwrap()
        .contains("\nUDP  198.18.0.1:53 rr\n"));
}

/// `-S` writes `-p`/`-M` before `-b`, as ipvsadm 1.31 does (FMT_RULE in
/// print_service_entry); rvs used to put `-b` first.
#[test]
fn save_puts_persistence_before_sched_flags() {
    let mut m = Model::new();
    run(
        &mut m,
        "-A -t 198.18.0.1:80 -s sh -b sh-port -p 600 -M 255.255.255.0",
    )
    .unwrap();
    assert_eq!(
        run(&mut m, "-S -n").unwrap(),
        "-A -t 198.18.0.1:80 -s sh -p 600 -M 255.255.255.0 -b sh-port\n"
    );
}

/// Firewall-mark services, as ipvsadm 1.31 names them: "FWM  1" and
/// "FWM  2 IPv6" in listings, "-f 1" and "-f 2 -6" in rules; after the
/// address services (ipvs_cmp_services compares the mark first).
fn fwmark_sample() -> Model {
    let mut m = Model::new();
    restore(
        &mut m,
        "-A -f 1 -s wlc\n\
         -a -f 1 -r 198.19.0.3:8080 -m -w 2\n\
         -a -f 1 -r 198.19.0.2 -m -w 1\n\
         -A -f 2 -6 -s rr -p 300 -M 64\n\
         -a -f 2 -6 -r [2001:db8::10] -g -w 1\n\
         -A -t 198.18.0.1:80 -s rr\n",
    )
    .unwrap();
    m
}

#[test]
fn fwmark_parsing_like_ipvsadm() {
    assert_eq!(
        p("-A -f 1").unwrap(),
        Command::AddService(ServiceSpec {
            key: ServiceKey::fwmark(1, false),
            scheduler: Some("wlc".into()),
            flags: None,
            persistent: None,
            netmask: None,
            ops: false,
            synproxy: false,
            toa: false,
            proxy_protocol: None,
        })
    );
    assert_eq!(
        p("--add-service --fwmark-service 4294967295 --ipv6 -s rr").unwrap(),
        Command::AddService(ServiceSpec {
            key: ServiceKey::fwmark(u32::MAX, true),
            scheduler: Some("rr".into()),
            flags: None,
            persistent: None,
            netmask: None,
            ops: false,
            synproxy: false,
            toa: false,
            proxy_protocol: None,
        })
    );
    assert_eq!(
        p("-D -f 7 -6").unwrap(),
        Command::DeleteService(ServiceKey::fwmark(7, true))
    );
    // DR keeps the destination port (0: the packet's), NAT without a
    // port keeps it too
    match p("-a -f 1 -r 198.19.0.2:8080 -g").unwrap() {
        Command::AddServer(k, r) => {
            assert_eq!(k, ServiceKey::fwmark(1, false));
            assert_eq!(r.addr, "198.19.0.2:0".parse().unwrap());
        }
        c => panic!("{c:?}"),
    }
    match p("-e -f 1 -r 198.19.0.2 -m -w 3").unwrap() {
        Command::EditServer(_, r) => assert_eq!(r.addr, "198.19.0.2:0".parse().unwrap()),
        c => panic!("{c:?}"),
    }
    match p("-d -f 2 -6 -r [2001:db8::10]").unwrap() {
        Command::DeleteServer(k, a) => {
            assert_eq!(k, ServiceKey::fwmark(2, true));
            assert_eq!(a, "[2001:db8::10]:0".parse().unwrap());
        }
        c => panic!("{c:?}"),
    }
    assert_eq!(perr("-A -f 0"), "invalid fwmark value `0' specified");
    assert_eq!(perr("-A -f x1"), "invalid fwmark value `x1' specified");
    assert_eq!(
        perr("-A -f 4294967296"),
        "invalid fwmark value `4294967296' specified"
    );
    assert_eq!(perr("-A -6 -f 1"), "-6 used before -f");
    assert_eq!(
        perr("-A -f 1 -t 198.18.0.1:80"),
        "multiple 'service-address' options specified"
    );
    assert_eq!(perr("-a -f 1 -r [2001:db8::1] -m"), DIFFERENT_FAMILY);
    assert_eq!(perr("-a -f 1 -6 -r 198.19.0.2 -g"), DIFFERENT_FAMILY);
    assert_eq!(
        perr("-A -f 1 -6 -p 60 -M 129"),
        "illegal ipv6 netmask specified"
    );
}

#[test]
fn golden_fwmark_listings() {
    let mut m = fwmark_sample();
    let want = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n\
\x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
TCP  198.18.0.1:80 rr\n\
FWM  1 wlc\n\
\x20 -> 198.19.0.2:0                 Masq    1      0          0         \n\
\x20 -> 198.19.0.3:8080              Masq    2      0          0         \n\
FWM  2 IPv6 rr persistent 300 mask 64\n\
\x20 -> [2001:db8::10]:0             Route   1      0          0         \n";
    assert_eq!(run(&mut m, "-Ln").unwrap(), want);
    let one = "Prot LocalAddress:Port Scheduler Flags\n\
\x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
FWM  2 IPv6 rr persistent 300 mask 64\n\
\x20 -> [2001:db8::10]:0             Route   1      0          0         \n";
    assert_eq!(run(&mut m, "-L -n -f 2 -6").unwrap(), one);
    assert_eq!(
        run(&mut m, "-L -n -f 2").unwrap_err().message,
        ModelError::NoSuchService.to_string()
    );
    let st = Stats {
        conns: 3,
        inpkts: 40,
        outpkts: 30,
        inbytes: 5000,
        outbytes: 7000,
    };
    let i = m.services.iter().position(|s| s.key.fwmark == 1).unwrap();
    m.services[i].stats = st;
    let j = m.services[i]
        .reals
        .iter()
        .position(|r| r.addr.port() == 8080)
        .unwrap();
    m.services[i].reals[j].stats = st;
    m.services[i].rates = Rates {
        cps: 2,
        inpps: 20,
        outpps: 10,
        inbps: 3000,
        outbps: 4000,
    };
    let want = "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n\
FWM  1                                   3       40       30     5000     7000\n\
\x20 -> 198.19.0.2:0                        0        0        0        0        0\n\
\x20 -> 198.19.0.3:8080                     3       40       30     5000     7000\n";
    assert_eq!(run(&mut m, "-L -n --stats -f 1").unwrap(), want);
    let want = "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n  -> RemoteAddress:Port\n\
FWM  1                                   2       20       10     3000     4000\n\
\x20 -> 198.19.0.2:0                        0        0        0        0        0\n\
\x20 -> 198.19.0.3:8080                     0        0        0        0        0\n";
    assert_eq!(run(&mut m, "-L -n --rate -f 1").unwrap(), want);
    // -Z -f zeroes that service only
    run(&mut m, "-Z -f 1").unwrap();
    assert_eq!(m.services[i].stats, Stats::default());
}

#[test]
fn fwmark_save_and_restore_round_trip() {
    let mut m = fwmark_sample();
    let want = "-A -t 198.18.0.1:80 -s rr\n\
-A -f 1 -s wlc\n\
-a -f 1 -r 198.19.0.2:0 -m -w 1\n\
-a -f 1 -r 198.19.0.3:8080 -m -w 2\n\
-A -f 2 -6 -s rr -p 300 -M 64\n\
-a -f 2 -6 -r [2001:db8::10]:0 -g -w 1\n";
    let saved = run(&mut m, "-S -n").unwrap();
    assert_eq!(saved, want);
    let mut back = Model::new();
    restore(&mut back, &saved).unwrap();
    assert_eq!(list::save(&back), saved);
    // edit, delete a server, delete the services
    run(&mut m, "-E -f 1 -s rr -p 60").unwrap();
    run(&mut m, "-d -f 1 -r 198.19.0.3:8080").unwrap();
    assert!(run(&mut m, "-S -n")
        .unwrap()
        .contains("-A -f 1 -s rr -p 60\n-a -f 1 -r 198.19.0.2:0 -m -w 1\n-A -f 2 -6"));
    run(&mut m, "-D -f 2 -6").unwrap();
    run(&mut m, "-D -f 1").unwrap();
    assert_eq!(run(&mut m, "-S -n").unwrap(), "-A -t 198.18.0.1:80 -s rr\n");
    assert_eq!(
        run(&mut m, "-D -f 1").unwrap_err().message,
        ModelError::NoSuchService.to_string()
    );
}

// ---- tunnel types (ipvsadm 1.31: --tun-type, --tun-port, --tun-*csum) ----

/// ipvsadm(8)'s EXAMPLE 3 and 4 shapes: every tunnel type and checksum
/// option, plus a DR server for the "n/a" column.
const TUN_RULES: &str = "-A -t 198.18.0.110:80 -s rr
-a -t 198.18.0.110:80 -r 198.19.10.1:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum
-a -t 198.18.0.110:80 -r 198.19.10.2:80 -i -w 2 --tun-type gre --tun-csum
-a -t 198.18.0.110:80 -r 198.19.10.3:80 -i -w 3 --tun-type ipip
-a -t 198.18.0.110:80 -r 198.19.10.4:80 -g -w 1
-a -t 198.18.0.110:80 -r 198.19.10.5:80 -i -w 1 --tun-type gue --tun-port 6079 --tun-remcsum
-a -t 198.18.0.110:80 -r 198.19.10.6:80 -i -w 1 --tun-type gre --tun-nocsum
";

#[test]
fn tunnel_options_parse_like_ipvsadm_1_31() {
    let k = key(Protocol::Tcp, "198.18.0.110:80");
    let spec = |a: &str, t: Tunnel| RealSpec {
        addr: a.parse().unwrap(),
        forward: Some(Forward::Tunnel),
        weight: Some(1),
        u_threshold: Some(0),
        l_threshold: Some(0),
        tunnel: t,
    };
    assert_eq!(
        p("-a -t 198.18.0.110:80 -r 198.19.10.1 -i --tun-type gue --tun-port 6080 --tun-csum")
            .unwrap(),
        Command::AddServer(
            k,
            spec(
                "198.19.10.1:80",
                Tunnel {
                    kind: TunType::Gue,
                    port: 6080,
                    csum: TunCsum::Csum
                }
            )
        )
    );
    assert_eq!(
        p("-e -t 198.18.0.110:80 -r 198.19.10.2 -i --tun-type=gre --tun-remcsum")
            .unwrap_err()
            .message,
        "Illegal 'tun-remcsum' option with the 'gre' tunnel type"
    );
    assert_eq!(
        p("-a -t 198.18.0.110:80 -r 198.19.10.2 -i --tun-type gre").unwrap(),
        Command::AddServer(
            k,
            spec(
                "198.19.10.2:80",
                Tunnel {
                    kind: TunType::Gre,
                    ..Tunnel::default()
                }
            )
        )
    );
    // -i alone: ipip, as ipvsadm sends it
    assert_eq!(
        p("-a -t 198.18.0.110:80 -r 198.19.10.3 -i").unwrap(),
        Command::AddServer(k, spec("198.19.10.3:80", Tunnel::default()))
    );
    // ipvsadm 1.31's refusals, word for word
    for (line, msg) in [
        (
            "-a -t 198.18.0.110:80 -r 198.19.10.1 -i --tun-type gue",
            "You need to supply the 'tun-port' option for the 'gue' tunnel type",
        ),
        (
            "-a -t 198.18.0.110:80 -r 198.19.10.1 -i --tun-port 6080",
            "Illegal 'tun-port' option with the 'ipip' tunnel type",
        ),
        (
            "-a -t 198.18.0.110:80 -r 198.19.10.1 -i --tun-type gre --tun-port 6080",
            "Illegal 'tun-port' option with the 'gre' tunnel type",
        ),
        (
            "-a -t 198.18.0.110:80 -r 198.19.10.1 -i --tun-csum",
            "Illegal 'tun-csum' option with the 'ipip' tunnel type",
        ),
        (
            "-a -t 198.18.0.110:80 -r 198.19.10.1 -i --tun-type gue --tun-port 1 --tun-nocsum --tun-csum",
            "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type",
        ),
        (
            "-a -t 198.18.0.110:80 -r 198.19.10.1 -m --tun-type gre",
            "Tunnel options conflict with forward method",
        ),
        (
            "-a -t 198.18.0.110:80 -r 198.19.10.1 --tun-csum",
            "Tunnel options conflict with forward method",
        ),
        (
            "-a -t 198.18.0.110:80 -r 198.19.10.1 -i --tun-type vxlan",
            "illegal tunnel type specified",
        ),
        (
            "-a -t 198.18.0.110:80 -r 198.19.10.1 -i --tun-type gue --tun-port 0",
            "illegal tunnel port specified",
        ),
        (
            "-a -t 198.18.0.110:80 -r 198.19.10.1 -i --tun-type gue --tun-port 65536",
            "illegal tunnel port specified",
        ),
        (
            "-d -t 198.18.0.110:80 -r 198.19.10.1 --tun-type gue",
            "Illegal 'tun-type' option with the 'delete-server' command",
        ),
        (
            "-A -t 198.18.0.110:80 --tun-info",
            "Illegal 'tun-info' option with the 'add-service' command",
        ),
        (
            "-a -t 198.18.0.110:80 -r 198.19.10.1 -i --tun-type gre --tun-type gre",
            "multiple 'tun-type' options specified",
        ),
    ] {
        assert_eq!(perr(line), msg, "{line}");
    }
}

#[test]
fn golden_tunnel_listing_save_and_restore() {
    let mut m = Model::new();
    restore(&mut m, TUN_RULES).unwrap();
    // -Ln: the Forward column only, as ipvsadm prints it
    let plain = "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  198.18.0.110:80 rr\n  -> 198.19.10.1:80               Tunnel  1      0          0         \n  -> 198.19.10.2:80               Tunnel  2      0          0         \n  -> 198.19.10.3:80               Tunnel  3      0          0         \n  -> 198.19.10.4:80               Route   1      0          0         \n  -> 198.19.10.5:80               Tunnel  1      0          0         \n  -> 198.19.10.6:80               Tunnel  1      0          0         \n";
    assert_eq!(run(&mut m, "-Ln").unwrap(), plain);
    // --tun-info: ipvsadm's TunnelInfo column (fwd_tun_info)
    let info = "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\nTCP  198.18.0.110:80 rr\n  -> 198.19.10.1:80               Tunnel  gue:6080:+c   1      0          0         \n  -> 198.19.10.2:80               Tunnel  gre:+c        2      0          0         \n  -> 198.19.10.3:80               Tunnel  ipip          3      0          0         \n  -> 198.19.10.4:80               Route   n/a           1      0          0         \n  -> 198.19.10.5:80               Tunnel  gue:6079:r+c  1      0          0         \n  -> 198.19.10.6:80               Tunnel  gre:-c        1      0          0         \n";
    assert_eq!(run(&mut m, "-Ln --tun-info").unwrap(), info);
    // one service, and after the other list options as ipvsadm orders them
    assert!(run(&mut m, "-L -t 198.18.0.110:80 --tun-info")
        .unwrap()
        .ends_with("gre:-c        1      0          0         \n"));
    assert!(!run(&mut m, "-L --stats --tun-info")
        .unwrap()
        .contains("TunnelInfo"));
    // -S: print_tunnel_rule's lines, byte for byte; -R reads them back
    let saved = run(&mut m, "-S -n").unwrap();
    assert_eq!(saved, TUN_RULES);
    let mut back = Model::new();
    restore(&mut back, &saved).unwrap();
    assert_eq!(list::save(&back), TUN_RULES);
    assert_eq!(back, m);
    // -e without tunnel options goes back to ipip, as ipvsadm sends it
    run(&mut m, "-e -t 198.18.0.110:80 -r 198.19.10.1 -i -w 1").unwrap();
    assert!(run(&mut m, "-S")
        .unwrap()
        .contains("-r 198.19.10.1:80 -i -w 1 --tun-type ipip\n"));
    // and -e to another method clears them
    run(&mut m, "-e -t 198.18.0.110:80 -r 198.19.10.2 -g").unwrap();
    assert!(run(&mut m, "-S")
        .unwrap()
        .contains("-r 198.19.10.2:80 -g -w 1\n"));
}

/// ipvsadm(8)'s EXAMPLE 2 (Firewall-Mark Virtual Service), replayed as the
/// man page gives it: one command at a time and as one `ipvsadm -R`
/// script; both give the listing and `-S` ipvsadm prints for it (the
/// addresses are the man page's; nothing is sent anywhere).
#[test]
fn ipvsadm_man_page_example_2_fwmark_replays() {
    let cmds = [
        "-A -f 1  -s rr",
        "-a -f 1 -r 192.168.10.1:0 -m",
        "-a -f 1 -r 192.168.10.2:0 -m",
        "-a -f 1 -r 192.168.10.3:0 -m",
        "-a -f 1 -r 192.168.10.4:0 -m",
        "-a -f 1 -r 192.168.10.5:0 -m",
    ];
    let mut one = Model::new();
    for c in cmds {
        run(&mut one, c).unwrap_or_else(|e| panic!("{c}: {e:?}"));
    }
    let mut script = Model::new();
    restore(&mut script, &format!("\n{}\n", cmds.join("\n"))).unwrap();
    let want = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n\
\x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
FWM  1 rr\n\
\x20 -> 192.168.10.1:0               Masq    1      0          0         \n\
\x20 -> 192.168.10.2:0               Masq    1      0          0         \n\
\x20 -> 192.168.10.3:0               Masq    1      0          0         \n\
\x20 -> 192.168.10.4:0               Masq    1      0          0         \n\
\x20 -> 192.168.10.5:0               Masq    1      0          0         \n";
    assert_eq!(run(&mut one, "-Ln").unwrap(), want);
    assert_eq!(run(&mut script, "-Ln").unwrap(), want);
    let saved = "-A -f 1 -s rr\n\
-a -f 1 -r 192.168.10.1:0 -m -w 1\n\
-a -f 1 -r 192.168.10.2:0 -m -w 1\n\
-a -f 1 -r 192.168.10.3:0 -m -w 1\n\
-a -f 1 -r 192.168.10.4:0 -m -w 1\n\
-a -f 1 -r 192.168.10.5:0 -m -w 1\n";
    assert_eq!(run(&mut one, "-S -n").unwrap(), saved);
    assert_eq!(run(&mut script, "-S -n").unwrap(), saved);
}

/// ipvsadm(8) 1.31's EXAMPLE 3 (GUE tunnelling) and EXAMPLE 4 (GRE),
/// replayed as the man page gives them, one command at a time and as one
/// `ipvsadm -R` script: the same listing and `-S` either way.
#[test]
fn ipvsadm_man_page_examples_3_4_tunnels_replay() {
    let cmds = [
        "-A -t 207.175.44.110:80 -s rr",
        "-a -t 207.175.44.110:80 -r 192.168.10.1:80 -i --tun-type gue --tun-port 6080 --tun-nocsum",
        "-a -t 207.175.44.110:80 -r 192.168.10.2:80 -i --tun-type gue --tun-port 6080 --tun-csum",
        "-a -t 207.175.44.110:80 -r 192.168.10.3:80 -i --tun-type gue --tun-port 6080 --tun-remcsum",
        "-a -t 207.175.44.110:80 -r 192.168.10.4:80 -i --tun-type gue --tun-port 6078",
        "-a -t 207.175.44.110:80 -r 192.168.10.5:80 -i --tun-type gue --tun-port 6079",
        "-A -t 10.0.0.1:80 -s rr",
        "-a -t 10.0.0.1:80 -r 192.168.11.1:80 -i --tun-type gre --tun-csum",
    ];
    let mut one = Model::new();
    for c in cmds {
        run(&mut one, c).unwrap_or_else(|e| panic!("{c}: {e:?}"));
    }
    let mut script = Model::new();
    restore(&mut script, &format!("\n{}\n", cmds.join("\n"))).unwrap();
    let want = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n\
\x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
TCP  10.0.0.1:80 rr\n\
\x20 -> 192.168.11.1:80              Tunnel  1      0          0         \n\
TCP  207.175.44.110:80 rr\n\
\x20 -> 192.168.10.1:80              Tunnel  1      0          0         \n\
\x20 -> 192.168.10.2:80              Tunnel  1      0          0         \n\
\x20 -> 192.168.10.3:80              Tunnel  1      0          0         \n\
\x20 -> 192.168.10.4:80              Tunnel  1      0          0         \n\
\x20 -> 192.168.10.5:80              Tunnel  1      0          0         \n";
    assert_eq!(run(&mut one, "-Ln").unwrap(), want);
    assert_eq!(run(&mut script, "-Ln").unwrap(), want);
    let saved = run(&mut one, "-S -n").unwrap();
    assert_eq!(run(&mut script, "-S -n").unwrap(), saved);
    for line in [
        "-a -t 207.175.44.110:80 -r 192.168.10.1:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum\n",
        "-a -t 207.175.44.110:80 -r 192.168.10.2:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum\n",
        "-a -t 207.175.44.110:80 -r 192.168.10.3:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-remcsum\n",
        "-a -t 10.0.0.1:80 -r 192.168.11.1:80 -i -w 1 --tun-type gre --tun-csum\n",
    ] {
        assert!(saved.contains(line), "{line:?} in\n{saved}");
    }
    let info = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n\
\x20 -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n\
TCP  10.0.0.1:80 rr\n\
\x20 -> 192.168.11.1:80              Tunnel  gre:+c        1      0          0         \n\
TCP  207.175.44.110:80 rr\n\
\x20 -> 192.168.10.1:80              Tunnel  gue:6080:-c   1      0          0         \n\
\x20 -> 192.168.10.2:80              Tunnel  gue:6080:+c   1      0          0         \n\
\x20 -> 192.168.10.3:80              Tunnel  gue:6080:r+c  1      0          0         \n\
\x20 -> 192.168.10.4:80              Tunnel  gue:6078:-c   1      0          0         \n\
\x20 -> 192.168.10.5:80              Tunnel  gue:6079:-c   1      0          0         \n";
    assert_eq!(run(&mut one, "-Ln --tun-info").unwrap(), info);
}

/// SYN proxy: DPVS's `-j/--synproxy enable|disable`, listed as DPVS's
/// print_service_entry does (` synproxy` after the flags in `-L`), saved
/// as `-j enable` so `-R` restores it; TCP services with masq/fullnat
/// real servers only.
#[test]
fn synproxy_parse_list_save_like_dpvs() {
    match p("-A -t 198.18.0.1:80 -s rr -j enable").unwrap() {
        Command::AddService(s) => assert!(s.synproxy),
        c => panic!("{c:?}"),
    }
    match p("--add-service --tcp-service 198.18.0.1:80 --synproxy disable").unwrap() {
        Command::AddService(s) => assert!(!s.synproxy),
        c => panic!("{c:?}"),
    }
    assert_eq!(
        perr("-A -t 198.18.0.1:80 -j on"),
        "synproxy switch must be enable or disable"
    );
    assert_eq!(
        perr("-A -u 198.18.0.1:53 -j enable"),
        "the SYN proxy is only for TCP virtual services"
    );
    assert_eq!(
        perr("-a -t 198.18.0.1:80 -r 198.19.0.2 -j enable"),
        "Illegal 'synproxy' option with the 'add-server' command"
    );

    let mut m = Model::new();
    run(&mut m, "-A -t 198.18.0.1:80 -s rr -j enable").unwrap();
    run(&mut m, "-a -t 198.18.0.1:80 -r 198.19.0.2:8080 -m").unwrap();
    let e = run(&mut m, "-a -t 198.18.0.1:80 -r 198.19.0.3 -g").unwrap_err();
    assert!(
        e.message.contains("masq and fullnat real servers only"),
        "{e:?}"
    );
    let l = run(&mut m, "-Ln").unwrap();
    assert!(l.contains("\nTCP  198.18.0.1:80 rr synproxy\n"), "{l}");
    let saved = run(&mut m, "-S -n").unwrap();
    assert_eq!(
        saved,
        "-A -t 198.18.0.1:80 -s rr -j enable\n\
         -a -t 198.18.0.1:80 -r 198.19.0.2:8080 -m -w 1\n"
    );
    let mut back = Model::new();
    restore(&mut back, &saved).unwrap();
    assert_eq!(list::save(&back), saved);
    // -E without -j clears it, as IPVS replaces the service flags
    run(&mut m, "-E -t 198.18.0.1:80 -s rr").unwrap();
    assert!(!m.services[0].synproxy);
    // a service with a DR real server cannot turn it on
    run(&mut m, "-a -t 198.18.0.1:80 -r 198.19.0.3 -g").unwrap();
    let e = run(&mut m, "-E -t 198.18.0.1:80 -s rr -j enable").unwrap_err();
    assert!(
        e.message.contains("masq and fullnat real servers only"),
        "{e:?}"
    );
}

/// TOA: `--toa` on TCP services (refused on UDP), listed as ` toa` at the
/// end of the service line and saved as ` --toa`; `-E` without it clears
/// it.
#[test]
fn toa_parse_list_save() {
    match p("-A -t 198.18.0.1:80 -s rr --toa").unwrap() {
        Command::AddService(s) => assert!(s.toa),
        c => panic!("{c:?}"),
    }
    match p("-A -t 198.18.0.1:80 -s rr").unwrap() {
        Command::AddService(s) => assert!(!s.toa),
        c => panic!("{c:?}"),
    }
    let e = p("-A -u 198.18.0.1:53 --toa").unwrap_err();
    assert_eq!(
        (e.message.as_str(), e.status),
        ("TOA is only for TCP virtual services", 2)
    );
    assert_eq!(
        perr("-a -t 198.18.0.1:80 -r 198.19.0.2 --toa"),
        "Illegal 'toa' option with the 'add-server' command"
    );
    assert_eq!(
        perr("-A -t 198.18.0.1:80 --toa --toa"),
        "multiple 'toa' options specified"
    );
    let mut m = Model::new();
    run(&mut m, "-A -t 198.18.0.1:80 -s rr -p 60 --toa").unwrap();
    run(&mut m, "-a -t 198.18.0.1:80 -r 198.19.0.2:8080 -b").unwrap();
    assert!(m.services[0].toa);
    let l = run(&mut m, "-Ln").unwrap();
    assert!(
        l.contains("\nTCP  198.18.0.1:80 rr persistent 60 toa\n"),
        "{l}"
    );
    let saved = run(&mut m, "-S -n").unwrap();
    assert_eq!(
        saved,
        "-A -t 198.18.0.1:80 -s rr -p 60 --toa\n\
         -a -t 198.18.0.1:80 -r 198.19.0.2:8080 -b -w 1\n"
    );
    let mut back = Model::new();
    restore(&mut back, &saved).unwrap();
    assert_eq!(list::save(&back), saved);
    run(&mut m, "-E -t 198.18.0.1:80 -s rr").unwrap();
    assert!(!m.services[0].toa);
}

/// DPVS's `--proxy-protocol v1|v2|disable` on `-A`/`-E` (TCP services
/// whose real servers are FullNAT), listed as DPVS's ipvsadm does (` ppv1`
/// after the scheduler's flags), saved as `--proxy-protocol v1` so `-R`
/// reads it back.
#[test]
fn proxy_protocol_parse_list_save_like_dpvs() {
    match p("-A -t 198.18.0.1:80 -s rr --proxy-protocol v2").unwrap() {
        Command::AddService(s) => assert_eq!(s.proxy_protocol, Some(ProxyProtocol::V2)),
        c => panic!("{c:?}"),
    }
    match p("-E -t 198.18.0.1:80 --proxy-protocol disable").unwrap() {
        Command::EditService(s) => assert_eq!(s.proxy_protocol, None),
        c => panic!("{c:?}"),
    }
    assert_eq!(
        perr("-A -t 198.18.0.1:80 --proxy-protocol v3"),
        "invalid proxy-protocol `v3' specified (v1, v2 or disable)"
    );
    assert_eq!(
        perr("-A -u 198.18.0.1:53 --proxy-protocol v1"),
        "Proxy Protocol is only for TCP virtual services"
    );
    assert_eq!(
        perr("-a -t 198.18.0.1:80 -r 198.19.0.2 --proxy-protocol v1"),
        "Illegal 'proxy-protocol' option with the 'add-server' command"
    );

    let mut m = Model::new();
    run(&mut m, "-A -t 198.18.0.1:80 -s rr --proxy-protocol v1").unwrap();
    run(&mut m, "-a -t 198.18.0.1:80 -r 198.19.0.2:8080 -b").unwrap();
    // a non-FullNAT real server is refused, nothing changes
    let e = run(&mut m, "-a -t 198.18.0.1:80 -r 198.19.0.3:8080 -m").unwrap_err();
    assert!(e.message.contains("Proxy Protocol needs FullNAT"), "{e:?}");
    assert_eq!(m.services[0].reals.len(), 1);
    run(&mut m, "-A -t [2001:db8::1]:443 -s wlc --proxy-protocol V2").unwrap();
    let l = run(&mut m, "-Ln").unwrap();
    assert!(l.contains("\nTCP  198.18.0.1:80 rr ppv1\n"), "{l}");
    assert!(l.contains("\nTCP  [2001:db8::1]:443 wlc ppv2\n"), "{l}");
    let saved = run(&mut m, "-S -n").unwrap();
    assert_eq!(
        saved,
        "-A -t 198.18.0.1:80 -s rr --proxy-protocol v1\n\
         -a -t 198.18.0.1:80 -r 198.19.0.2:8080 -b -w 1\n\
         -A -t [2001:db8::1]:443 -s wlc --proxy-protocol v2\n"
    );
    let mut back = Model::new();
    restore(&mut back, &saved).unwrap();
    assert_eq!(list::save(&back), saved);
    // -E without it turns it off (IPVS's -E replaces); -E with it on a
    // service with a masq real server is refused
    run(&mut m, "-E -t 198.18.0.1:80 -s rr").unwrap();
    assert_eq!(m.services[0].proxy_protocol, None);
    run(&mut m, "-a -t 198.18.0.1:80 -r 198.19.0.3:8080 -m").unwrap();
    let e = run(&mut m, "-E -t 198.18.0.1:80 -s rr --proxy-protocol v2").unwrap_err();
    assert!(e.message.contains("198.19.0.3:8080 is Masq"), "{e:?}");
    assert_eq!(m.services[0].proxy_protocol, None);
}

/// SYN proxy, TOA and Proxy Protocol each rewrite the start of a
/// connection; one service takes one of them, and a refused command
/// changes nothing.
#[test]
fn one_client_address_or_synproxy_feature_per_service() {
    let mut m = Model::new();
    run(&mut m, "-A -t 198.18.0.1:80 -s rr --toa").unwrap();
    for cmd in [
        "-E -t 198.18.0.1:80 -s rr --toa --proxy-protocol v1",
        "-E -t 198.18.0.1:80 -s rr --toa -j enable",
        "-A -t 198.18.0.2:80 -s rr -j enable --proxy-protocol v2",
    ] {
        let e = run(&mut m, cmd).unwrap_err();
        assert!(
            e.message.contains("not combined on one service"),
            "{cmd}: {e:?}"
        );
    }
    assert_eq!(list::save(&m), "-A -t 198.18.0.1:80 -s rr --toa\n");
}
