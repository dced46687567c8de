//! The policy: what to do with each app's traffic. Rules of the detection engine produce an
//! app; `POLICY[app]` says drop, monitor or pass.
//!
//! The default blocks every call class, generic STUN/TURN included (it is the way into every
//! WebRTC call). A policy names apps or classes: `media = "monitor"`, `sip = "pass"`; an app
//! setting wins over its class, and `all` sets everything first.

use std::fmt;

use anyhow::{anyhow, bail};
use voipfilter_common::{Action, App, Class, app::MAX_APPS};

/// An action for every app id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    actions: [Action; MAX_APPS as usize],
}

/// What a policy line names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    All,
    Class(Class),
    App(App),
}

const CLASSES: [Class; 5] = [Class::Signalling, Class::Media, Class::NatTraversal, Class::CallApp, Class::Custom];

impl Target {
    pub fn parse(s: &str) -> anyhow::Result<Target> {
        let l = s.to_ascii_lowercase();
        if l == "all" {
            return Ok(Target::All);
        }
        if let Some(c) = CLASSES.into_iter().find(|c| c.name() == l) {
            return Ok(Target::Class(c));
        }
        match App::from_name(&l) {
            Some(App::Unknown) => bail!("'unknown' traffic always passes; it cannot be given a policy"),
            Some(a) => Ok(Target::App(a)),
            None => Err(anyhow!(
                "unknown app or class '{s}': expected all, a class ({}) or an app (see `voipfilter apps`)",
                CLASSES.map(Class::name).join(", ")
            )),
        }
    }

    fn order(self) -> u8 {
        match self {
            Target::All => 0,
            Target::Class(_) => 1,
            Target::App(_) => 2,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::All => f.write_str("all"),
            Target::Class(c) => f.write_str(c.name()),
            Target::App(a) => f.write_str(a.name()),
        }
    }
}

impl Default for Policy {
    /// Block every call: all apps drop; unknown traffic passes.
    fn default() -> Self {
        let mut actions = [Action::Drop; MAX_APPS as usize];
        actions[App::Unknown as usize] = Action::Pass;
        Policy { actions }
    }
}

impl Policy {
    /// The default policy with `settings` applied: `all` first, then classes, then apps.
    pub fn with(settings: &[(Target, Action)]) -> Policy {
        let mut p = Policy::default();
        let mut sorted: Vec<_> = settings.to_vec();
        sorted.sort_by_key(|(t, _)| t.order());
        for (t, a) in sorted {
            p.set(t, a);
        }
        p
    }

    pub fn set(&mut self, target: Target, action: Action) {
        for &app in App::ALL {
            if app == App::Unknown {
                continue;
            }
            let hit = match target {
                Target::All => true,
                Target::Class(c) => app.class() == c,
                Target::App(a) => app == a,
            };
            if hit {
                self.actions[app as usize] = action;
            }
        }
    }

    pub fn action(&self, app: App) -> Action {
        self.actions[app as usize]
    }

    /// The map contents: one byte per app id.
    pub fn bytes(&self) -> [u8; MAX_APPS as usize] {
        self.actions.map(|a| a as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_blocks_every_call_class() {
        let p = Policy::default();
        for &a in App::ALL {
            let want = if a == App::Unknown { Action::Pass } else { Action::Drop };
            assert_eq!(p.action(a), want, "{}", a.name());
        }
    }

    #[test]
    fn apps_override_classes_override_all() {
        let p = Policy::with(&[
            (Target::App(App::Sip), Action::Pass),
            (Target::Class(Class::Signalling), Action::Monitor),
            (Target::All, Action::Drop),
        ]);
        assert_eq!(p.action(App::Sip), Action::Pass);
        assert_eq!(p.action(App::H323), Action::Monitor);
        assert_eq!(p.action(App::Zoom), Action::Drop);
        assert_eq!(p.action(App::Unknown), Action::Pass);
    }

    #[test]
    fn parses_targets() {
        assert_eq!(Target::parse("MEDIA").unwrap(), Target::Class(Class::Media));
        assert_eq!(Target::parse("whatsapp").unwrap(), Target::App(App::WhatsApp));
        assert_eq!(Target::parse("all").unwrap(), Target::All);
        assert!(Target::parse("unknown").is_err());
        assert!(Target::parse("skipe").unwrap_err().to_string().contains("expected all, a class"));
    }
}
