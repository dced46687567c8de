//! The verdict for one packet (what `engine::process` returns and the XDP programs count), and
//! the record the programs can prepend to a frame to report it.

use crate::{Action, Reason};

/// The decision for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// App id to count under (always below [`MAX_APPS`]).
    pub app: u16,
    pub action: Action,
    /// Why the packet was not parsed to its ports (`Reason::Ok` when it was).
    pub reason: Reason,
}

/// What the program prepends to a frame as XDP metadata when the load-time global
/// `REPORT_VERDICT` is 1 (replay and tests read it from BPF_PROG_TEST_RUN's output, so they learn
/// each packet's verdict without a map read). Never enabled on a live interface.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerdictRecord {
    /// [`VerdictRecord::MAGIC`].
    pub magic: u16,
    pub app: u16,
    pub action: u8,
    pub reason: u8,
    pub _pad: [u8; 2],
}

const _: () = assert!(core::mem::size_of::<VerdictRecord>() == 8);

impl VerdictRecord {
    pub const MAGIC: u16 = 0x5646;
    /// Name of the load-time global that turns the record on.
    pub const GLOBAL: &'static str = "REPORT_VERDICT";

    #[inline(always)]
    pub fn new(v: &Verdict) -> Self {
        VerdictRecord {
            magic: Self::MAGIC,
            app: v.app,
            action: v.action as u8,
            reason: v.reason as u8,
            _pad: [0; 2],
        }
    }
}

#[cfg(test)]
mod tests {
    //! The user rules' semantics through the engine (their precedence over the detectors is
    //! in engine.rs's tests): payloads here are plain bytes that no detector claims.
    use super::*;
    use crate::{
        App,
        engine::process,
        packet::proto,
        rules::{PortKey, Rule},
        user::{frame::Frame, rules::RuleSet, tables::HostTables},
    };

    fn classify(f: &[u8], rules: &RuleSet) -> Verdict {
        process(f, &HostTables { rules: rules.clone(), ..HostTables::new() })
    }

    fn rules() -> RuleSet {
        let mut r = RuleSet::default();
        r.ports.insert(PortKey::new(proto::UDP, 5060), Rule::new(App::Sip, Action::Drop));
        r.ports.insert(PortKey::new(proto::TCP, 1720), Rule::new(App::H323, Action::Monitor));
        r.add_prefix4([192, 0, 2, 0], 24, Rule::new(App::Custom, Action::Drop));
        r.add_prefix4([192, 0, 2, 128], 25, Rule::new(App::Custom, Action::Pass));
        r.add_prefix6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 32, Rule::new(App::Zoom, Action::Drop));
        r
    }

    fn verdict(f: &[u8]) -> (u16, Action, Reason) {
        let v = classify(f, &rules());
        (v.app, v.action, v.reason)
    }

    #[test]
    fn port_rules_match_either_direction() {
        let to = Frame::udp4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 5060, b"x").build();
        let from = Frame::udp4([10, 0, 0, 2], 5060, [10, 0, 0, 1], 40000, b"x").build();
        assert_eq!(verdict(&to), (App::Sip as u16, Action::Drop, Reason::Ok));
        assert_eq!(verdict(&from), (App::Sip as u16, Action::Drop, Reason::Ok));
        let tcp = Frame::tcp4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 5060, 2, b"").build();
        assert_eq!(verdict(&tcp), (0, Action::Pass, Reason::Ok), "port rules are per protocol");
        let h323 = Frame::tcp4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 1720, 2, b"").build();
        assert_eq!(verdict(&h323), (App::H323 as u16, Action::Monitor, Reason::Ok));
        let other = Frame::udp4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 53, b"x").build();
        assert_eq!(verdict(&other), (0, Action::Pass, Reason::Ok));
    }

    #[test]
    fn longest_prefix_wins_and_prefix_beats_port() {
        let drop = Frame::udp4([10, 0, 0, 1], 1, [192, 0, 2, 7], 53, b"x").build();
        assert_eq!(verdict(&drop), (App::Custom as u16, Action::Drop, Reason::Ok));
        let src = Frame::udp4([192, 0, 2, 7], 53, [10, 0, 0, 1], 1, b"x").build();
        assert_eq!(verdict(&src).1, Action::Drop);
        let exception = Frame::udp4([10, 0, 0, 1], 1, [192, 0, 2, 200], 5060, b"x").build();
        assert_eq!(verdict(&exception), (App::Custom as u16, Action::Pass, Reason::Ok));
        let v6 = Frame::udp6([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 1,
            [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9], 443, b"x").build();
        assert_eq!(verdict(&v6), (App::Zoom as u16, Action::Drop, Reason::Ok));
    }

    #[test]
    fn prefix_rules_apply_without_ports() {
        let frag = Frame::raw4([10, 0, 0, 1], [192, 0, 2, 1], proto::UDP, b"tail").fragment(5, 100, false).build();
        assert_eq!(verdict(&frag), (App::Custom as u16, Action::Drop, Reason::LaterFragment));
        let frag = Frame::raw4([10, 0, 0, 1], [10, 0, 0, 2], proto::UDP, b"tail").fragment(5, 100, false).build();
        assert_eq!(verdict(&frag), (0, Action::Pass, Reason::LaterFragment));
        let icmp = Frame::raw4([10, 0, 0, 1], [192, 0, 2, 1], proto::ICMP, &[8, 0, 0, 0]).build();
        assert_eq!(verdict(&icmp), (App::Custom as u16, Action::Drop, Reason::OtherL4));
    }

    #[test]
    fn unparsable_frames_pass_with_a_reason() {
        assert_eq!(verdict(&[0u8; 10]), (0, Action::Pass, Reason::Truncated));
        let mut arp = Frame::udp4([10, 0, 0, 1], 1, [10, 0, 0, 2], 5060, b"x").build();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(verdict(&arp), (0, Action::Pass, Reason::NotIp));
    }

    #[test]
    fn bad_rule_values_are_safe() {
        let mut r = RuleSet::default();
        r.ports.insert(PortKey::new(proto::UDP, 9), Rule { app: 999, action: 77, _pad: 0 });
        let f = Frame::udp4([10, 0, 0, 1], 1, [10, 0, 0, 2], 9, b"x").build();
        let v = classify(&f[..], &r);
        assert_eq!((v.app, v.action), (App::Custom as u16, Action::Pass));
    }
}
