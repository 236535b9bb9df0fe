//! The policy-file parser: one [`Builder`] checks every rule as lines (or [`Policy::k_of_n`]'s
//! arguments) arrive, so the file and the programmatic form cannot drift apart.

use std::collections::HashMap;

use super::{
    Location, LogKey, MAX_GROUPS, MAX_LOGS, MAX_WITNESSES, Member, NONE, Policy, PolicyError,
    PolicyGroup, PolicyLog, PolicyWitness, RuleError, Threshold, show,
};
use crate::cosignature::{CosignatureVerifier, SIG_TYPE_COSIGNATURE_V1};
use crate::note::{Ed25519Verifier, KeyError, SIG_TYPE_ED25519, Verifier, VerifierKey};
use crate::text::parse_decimal;

/// The parser's state, shared by [`Policy::parse`] and [`Policy::k_of_n`] so both enforce the
/// same rules.
#[derive(Default)]
pub(super) struct Builder {
    policy_logs: Vec<PolicyLog>,
    witnesses: Vec<PolicyWitness>,
    groups: Vec<PolicyGroup>,
    /// Witness and group names.
    names: HashMap<Vec<u8>, Member>,
    /// Every log and witness public key, with where it was listed.
    keys: HashMap<[u8; 32], Location>,
    /// Every (key name, key ID) of a log or witness verifier.
    key_ids: HashMap<(String, u32), Location>,
    quorum: Option<(Option<Member>, Location)>,
}

impl Builder {
    pub(super) fn line(&mut self, line: &[u8], at: Location) -> Result<(), RuleError> {
        if let Some(&b) = line
            .iter()
            .find(|&&b| b != b'\t' && !(0x20..=0x7e).contains(&b) && b < 0x80)
        {
            return Err(RuleError::Byte(b));
        }
        let fields: Vec<&[u8]> = line
            .split(|&b| b == b' ' || b == b'\t')
            .filter(|f| !f.is_empty())
            .collect();
        match fields.as_slice() {
            [] => Ok(()),
            [first, ..] if first.starts_with(b"#") => Ok(()),
            [b"log", vkey] => self.log(vkey, None, at),
            [b"log", vkey, url] => self.log(vkey, Some(url), at),
            [b"log", ..] => Err(RuleError::Fields("log <vkey> [<url>]")),
            [b"witness", name, vkey] => self.witness(name, vkey, None, at),
            [b"witness", name, vkey, url] => self.witness(name, vkey, Some(url), at),
            [b"witness", ..] => Err(RuleError::Fields("witness <name> <vkey> [<url>]")),
            [b"group", name, k, members @ ..] if !members.is_empty() => {
                self.group(name, k, members)
            }
            [b"group", ..] => Err(RuleError::Fields("group <name> all|any|<k> <member>...")),
            [b"quorum", name] => self.quorum(name, at),
            [b"quorum", ..] => Err(RuleError::Fields("quorum <name>|none")),
            [other, ..] => Err(RuleError::Keyword(show(other))),
        }
    }

    pub(super) fn log(
        &mut self,
        vkey: &[u8],
        url: Option<&[u8]>,
        at: Location,
    ) -> Result<(), RuleError> {
        if self.policy_logs.len() == MAX_LOGS {
            return Err(too_many("logs", MAX_LOGS));
        }
        let (text, parsed) = parse_vkey(vkey)?;
        let key = match parsed.key_type {
            SIG_TYPE_ED25519 => {
                LogKey::Ed25519(Ed25519Verifier::from_vkey(text).map_err(RuleError::Key)?)
            }
            SIG_TYPE_COSIGNATURE_V1 => {
                LogKey::Cosignature(CosignatureVerifier::from_vkey(text).map_err(RuleError::Key)?)
            }
            key_type => {
                return Err(RuleError::KeyType {
                    role: "log",
                    key_type,
                });
            }
        };
        self.claim_key(&parsed.key, key.verifier(), at)?;
        self.policy_logs.push(PolicyLog {
            vkey: text.to_owned(),
            key,
            url: url.map(<[u8]>::to_vec),
        });
        Ok(())
    }

    pub(super) fn witness(
        &mut self,
        name: &[u8],
        vkey: &[u8],
        url: Option<&[u8]>,
        at: Location,
    ) -> Result<(), RuleError> {
        if self.witnesses.len() == MAX_WITNESSES {
            return Err(too_many("witnesses", MAX_WITNESSES));
        }
        let (text, parsed) = parse_vkey(vkey)?;
        self.check_new_name(name)?;
        if !matches!(parsed.key_type, SIG_TYPE_ED25519 | SIG_TYPE_COSIGNATURE_V1) {
            let key_type = parsed.key_type;
            return Err(RuleError::KeyType {
                role: "witness",
                key_type,
            });
        }
        let verifier = CosignatureVerifier::from_vkey(text).map_err(RuleError::Key)?;
        self.claim_key(&parsed.key, &verifier, at)?;
        self.names
            .insert(name.to_vec(), Member::Witness(self.witnesses.len()));
        self.witnesses.push(PolicyWitness {
            name: name.to_vec(),
            vkey: text.to_owned(),
            verifier,
            url: url.map(<[u8]>::to_vec),
        });
        Ok(())
    }

    pub(super) fn group(
        &mut self,
        name: &[u8],
        k: &[u8],
        members: &[&[u8]],
    ) -> Result<(), RuleError> {
        if self.groups.len() == MAX_GROUPS {
            return Err(too_many("groups", MAX_GROUPS));
        }
        self.check_new_name(name)?;
        let threshold = match k {
            b"all" => Threshold::All,
            b"any" => Threshold::Any,
            _ => {
                let k_num = std::str::from_utf8(k)
                    .ok()
                    .and_then(parse_decimal)
                    .ok_or_else(|| RuleError::Threshold(show(k)))?;
                let n = members.len();
                match usize::try_from(k_num) {
                    Ok(k) if (1..=n).contains(&k) => Threshold::AtLeast(k),
                    _ => return Err(RuleError::ThresholdRange { k: k_num, n }),
                }
            }
        };
        let mut resolved = Vec::with_capacity(members.len());
        for m in members {
            let member = self.resolve(m)?.ok_or(RuleError::NoneMember)?;
            if resolved.contains(&member) {
                return Err(RuleError::DuplicateMember(show(m)));
            }
            resolved.push(member);
        }
        self.names
            .insert(name.to_vec(), Member::Group(self.groups.len()));
        self.groups.push(PolicyGroup {
            name: name.to_vec(),
            threshold,
            members: resolved,
        });
        Ok(())
    }

    pub(super) fn quorum(&mut self, name: &[u8], at: Location) -> Result<(), RuleError> {
        if let Some((_, first)) = self.quorum {
            return Err(RuleError::SecondQuorum(first));
        }
        self.quorum = Some((self.resolve(name)?, at));
        Ok(())
    }

    pub(super) fn finish(self) -> Result<Policy, PolicyError> {
        let (quorum, _) = self.quorum.ok_or(PolicyError::NoQuorum)?;
        Ok(Policy {
            logs: self.policy_logs,
            witnesses: self.witnesses,
            groups: self.groups,
            quorum,
        })
    }

    /// A defined name: `Some(member)`, or `None` for `none`.
    fn resolve(&self, name: &[u8]) -> Result<Option<Member>, RuleError> {
        if name == NONE.as_bytes() {
            return Ok(None);
        }
        match self.names.get(name) {
            Some(m) => Ok(Some(*m)),
            None => Err(RuleError::UndefinedName(show(name))),
        }
    }

    fn check_new_name(&self, name: &[u8]) -> Result<(), RuleError> {
        if name == NONE.as_bytes() || self.names.contains_key(name) {
            return Err(RuleError::DuplicateName(show(name)));
        }
        Ok(())
    }

    /// Records a log or witness key, refusing a public key or a (key name, key ID) seen before.
    fn claim_key(
        &mut self,
        public_key: &[u8],
        verifier: &dyn Verifier,
        at: Location,
    ) -> Result<(), RuleError> {
        let pk: [u8; 32] = public_key.try_into().map_err(|_| {
            RuleError::Key(KeyError::Length {
                got: public_key.len(),
                want: 32,
            })
        })?;
        if let Some(first) = self.keys.get(&pk) {
            return Err(RuleError::DuplicateKey(*first));
        }
        let id = (verifier.name().to_owned(), verifier.key_id());
        if let Some(first) = self.key_ids.get(&id) {
            return Err(RuleError::AmbiguousKey {
                key: format!("{}+{:08x}", id.0, id.1),
                first: *first,
            });
        }
        self.keys.insert(pk, at);
        self.key_ids.insert(id, at);
        Ok(())
    }
}

fn too_many(what: &'static str, max: usize) -> RuleError {
    RuleError::TooMany { what, max }
}

/// A vkey field: UTF-8, and the generic vkey shape (which also checks the key ID of types
/// `0x01` and `0x04`).
fn parse_vkey(field: &[u8]) -> Result<(&str, VerifierKey), RuleError> {
    let text = std::str::from_utf8(field)
        .map_err(|_| RuleError::Key(KeyError::Format("vkey is not UTF-8")))?;
    let parsed = VerifierKey::parse(text).map_err(RuleError::Key)?;
    Ok((text, parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A verifier with any name and key ID, to fake a key-ID collision between two public keys
    /// (real ones need about 2^32 tries).
    struct Fake(&'static str, u32);

    impl Verifier for Fake {
        fn name(&self) -> &str {
            self.0
        }
        fn key_id(&self) -> u32 {
            self.1
        }
        fn verify(&self, _: &[u8], _: &[u8]) -> bool {
            false
        }
    }

    #[test]
    fn same_name_and_key_id_is_ambiguous() {
        let mut b = Builder::default();
        b.claim_key(&[1; 32], &Fake("a", 7), Location::Line(1))
            .unwrap();
        // Another public key, same (name, ID): refused.
        assert_eq!(
            b.claim_key(&[2; 32], &Fake("a", 7), Location::Line(2)),
            Err(RuleError::AmbiguousKey {
                key: "a+00000007".into(),
                first: Location::Line(1)
            })
        );
        // Another name or another ID: fine.
        b.claim_key(&[3; 32], &Fake("b", 7), Location::Line(3))
            .unwrap();
        b.claim_key(&[4; 32], &Fake("a", 8), Location::Line(4))
            .unwrap();
        assert_eq!(
            b.claim_key(&[4; 32], &Fake("c", 9), Location::Line(5)),
            Err(RuleError::DuplicateKey(Location::Line(4)))
        );
    }
}
