//! Application and class ids. They index counters and appear in rules, so their numbers are ABI:
//! append new apps, never renumber.

/// Broad kind of traffic an app id stands for; policies can act on a whole class.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Not VoIP (or not classified).
    None = 0,
    /// Call control: SIP, H.323 signalling, MGCP, Megaco, SCCP, IAX2 control.
    Signalling = 1,
    /// Call media: RTP, RTCP, SRTP, DTLS-SRTP.
    Media = 2,
    /// STUN/TURN/ICE: the way into every WebRTC call.
    NatTraversal = 3,
    /// An app's own call traffic (WhatsApp, Zoom, ...), whatever protocol it uses.
    CallApp = 4,
    /// Rules a user added under no app name.
    Custom = 5,
}

macro_rules! apps {
    ($($id:literal $var:ident $name:literal $class:ident $doc:literal,)*) => {
        /// An application id (`u16` in maps).
        #[repr(u16)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum App {
            $(#[doc = $doc] $var = $id,)*
        }

        impl App {
            /// Every app, in id order.
            pub const ALL: &'static [App] = &[$(App::$var,)*];

            #[inline(always)]
            pub const fn from_u16(v: u16) -> Option<App> {
                match v {
                    $($id => Some(App::$var),)*
                    _ => None,
                }
            }

            /// The name used on the command line, in config files and in JSON.
            pub const fn name(self) -> &'static str {
                match self { $(App::$var => $name,)* }
            }

            pub const fn class(self) -> Class {
                match self { $(App::$var => Class::$class,)* }
            }

            pub const fn description(self) -> &'static str {
                match self { $(App::$var => $doc,)* }
            }
        }
    };
}

apps! {
    0  Unknown     "unknown"      None         "traffic no rule or detector claimed",
    1  Sip         "sip"          Signalling   "SIP (RFC 3261) over UDP or TCP",
    2  Rtp         "rtp"          Media        "RTP media (RFC 3550)",
    3  Rtcp        "rtcp"         Media        "RTCP control of RTP media",
    4  Srtp        "srtp"         Media        "SRTP/SRTCP media after DTLS or STUN",
    5  Stun        "stun"         NatTraversal "STUN binding and ICE checks (RFC 8489)",
    6  Turn        "turn"         NatTraversal "TURN relays and ChannelData (RFC 8656)",
    7  Dtls        "dtls"         Media        "DTLS of a call (DTLS-SRTP key exchange)",
    8  Iax2        "iax2"         Signalling   "IAX2 (Asterisk inter-exchange)",
    9  H323        "h323"         Signalling   "H.323: H.225 call signalling, H.245, RAS",
    10 Mgcp        "mgcp"         Signalling   "MGCP media gateway control",
    11 Megaco      "megaco"       Signalling   "Megaco / H.248",
    12 Sccp        "sccp"         Signalling   "Cisco SCCP (Skinny)",
    13 WhatsApp    "whatsapp"     CallApp      "WhatsApp calls",
    14 Teams       "teams"        CallApp      "Microsoft Teams / Skype calls",
    15 Viber       "viber"        CallApp      "Viber calls",
    16 GoogleMeet  "google-meet"  CallApp      "Google Meet / Hangouts / Duo calls",
    17 TeamSpeak   "teamspeak"    CallApp      "TeamSpeak voice",
    18 Zoom        "zoom"         CallApp      "Zoom meetings",
    19 Signal      "signal"       CallApp      "Signal calls",
    20 Telegram    "telegram"     CallApp      "Telegram calls",
    21 Discord     "discord"      CallApp      "Discord voice",
    22 Mumble      "mumble"       CallApp      "Mumble voice",
    23 Line        "line"         CallApp      "LINE calls",
    24 Imo         "imo"          CallApp      "IMO calls",
    25 Agora       "agora"        CallApp      "Agora SD-RTN (apps built on Agora)",
    26 FaceTime    "facetime"     CallApp      "Apple FaceTime",
    27 Jitsi       "jitsi"        CallApp      "Jitsi Meet",
    28 Webex       "webex"        CallApp      "Cisco Webex",
    29 KakaoTalk   "kakaotalk"    CallApp      "KakaoTalk voice",
    30 Snapchat    "snapchat"     CallApp      "Snapchat calls",
    31 Messenger   "messenger"    CallApp      "Facebook Messenger calls",
    32 Bfcp        "bfcp"         Signalling   "BFCP conference floor control",
    63 Custom      "custom"       Custom       "user rules with no app name",
}

/// Slots in the per-app counter array; every app id is below this.
pub const MAX_APPS: u32 = 64;

const _: () = {
    let mut i = 0;
    while i < App::ALL.len() {
        assert!((App::ALL[i] as u32) < MAX_APPS);
        i += 1;
    }
};

impl App {
    pub fn from_name(s: &str) -> Option<App> {
        App::ALL.iter().copied().find(|a| a.name().eq_ignore_ascii_case(s))
    }
}

impl Class {
    pub const fn name(self) -> &'static str {
        match self {
            Class::None => "none",
            Class::Signalling => "signalling",
            Class::Media => "media",
            Class::NatTraversal => "nat-traversal",
            Class::CallApp => "call-app",
            Class::Custom => "custom",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for &a in App::ALL {
            assert_eq!(App::from_u16(a as u16), Some(a));
            assert_eq!(App::from_name(a.name()), Some(a));
            assert!(seen.insert(a.name()), "duplicate name {}", a.name());
        }
        assert_eq!(App::from_u16(62), None);
        assert_eq!(App::from_name("SIP"), Some(App::Sip));
        assert_eq!(App::Zoom.class(), Class::CallApp);
    }
}
