//! Sealed objects and counters as private `CKO_DATA` token objects.
//!
//! Each value is stored with a generation number (a sealed object's value is
//! `be64(generation) ‖ data`; a counter's value is its `be64` count, which only grows). An
//! update creates the new object first and then destroys the old ones, so a crash in between
//! leaves two objects and a read takes the newest: the update happened or it did not, never
//! half. Updates are serialised within this process; PKCS#11 offers nothing to serialise them
//! across processes (see the crate docs).

use std::collections::BTreeSet;

use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use ironclad_se::{Error, Label, MAX_OBJECT_LEN, Result};
use zeroize::{Zeroize, Zeroizing};

use crate::backend::Pkcs11Se;
use crate::error::Pkcs11Error;
use crate::keys::{find, label_attr};
use crate::token::lock;

const OBJECT_APP: &[u8] = b"ironclad";
const COUNTER_APP: &[u8] = b"ironclad-counter";
const GENERATION_LEN: usize = 8;

fn call(function: &'static str) -> impl FnOnce(cryptoki::error::Error) -> Error {
    move |e| Pkcs11Error::call(function, e).into()
}

fn template(app: &[u8], name: &Label) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Application(app.to_vec()),
        label_attr(name),
    ]
}

/// Every object stored under `name`, with its value.
fn versions(s: &Session, app: &[u8], name: &Label) -> Result<Vec<(ObjectHandle, Zeroizing<Vec<u8>>)>> {
    let mut out = Vec::new();
    for handle in find(s, &template(app, name))? {
        let attrs = s.get_attributes(handle, &[AttributeType::Value]).map_err(call("C_GetAttributeValue"))?;
        let value = match attrs.into_iter().next() {
            Some(Attribute::Value(v)) => Zeroizing::new(v),
            _ => Zeroizing::new(Vec::new()),
        };
        if value.len() < GENERATION_LEN {
            return Err(
                Pkcs11Error::malformed(name, "stored value is shorter than its generation number").into()
            );
        }
        out.push((handle, value));
    }
    Ok(out)
}

fn generation(value: &[u8]) -> u64 {
    let mut bytes = [0u8; GENERATION_LEN];
    bytes.copy_from_slice(&value[..GENERATION_LEN]);
    u64::from_be_bytes(bytes)
}

/// Writes `value` as a new object, then destroys `old`.
fn replace(
    s: &Session,
    app: &[u8],
    name: &Label,
    value: Vec<u8>,
    old: &[(ObjectHandle, Zeroizing<Vec<u8>>)],
) -> Result<()> {
    let mut attrs = template(app, name);
    attrs.extend([Attribute::Private(true), Attribute::Value(value)]);
    let created = s.create_object(&attrs).map_err(call("C_CreateObject"));
    if let Some(Attribute::Value(value)) = attrs.last_mut() {
        value.zeroize();
    }
    created?;
    for (handle, _) in old {
        s.destroy_object(*handle).map_err(call("C_DestroyObject"))?;
    }
    Ok(())
}

fn newest(versions: &[(ObjectHandle, Zeroizing<Vec<u8>>)]) -> Option<&Zeroizing<Vec<u8>>> {
    versions.iter().map(|(_, v)| v).max_by_key(|v| generation(v))
}

impl Pkcs11Se {
    pub(crate) fn put(&self, name: &Label, data: &[u8]) -> Result<()> {
        if data.len() > MAX_OBJECT_LEN {
            return Err(Error::ObjectTooLarge { name: name.clone(), len: data.len(), max: MAX_OBJECT_LEN });
        }
        let _serial = lock(&self.object_writes);
        self.token.with_session(|s| {
            let old = versions(s, OBJECT_APP, name)?;
            let next = newest(&old).map_or(0, |v| generation(v)).wrapping_add(1);
            let mut value = Vec::with_capacity(GENERATION_LEN + data.len());
            value.extend_from_slice(&next.to_be_bytes());
            value.extend_from_slice(data);
            replace(s, OBJECT_APP, name, value, &old)
        })
    }

    pub(crate) fn get(&self, name: &Label) -> Result<Zeroizing<Vec<u8>>> {
        self.token.with_session(|s| {
            let all = versions(s, OBJECT_APP, name)?;
            let value = newest(&all).ok_or_else(|| Error::ObjectNotFound(name.clone()))?;
            Ok(Zeroizing::new(value[GENERATION_LEN..].to_vec()))
        })
    }

    pub(crate) fn remove(&self, name: &Label) -> Result<()> {
        let _serial = lock(&self.object_writes);
        self.token.with_session(|s| {
            let handles = find(s, &template(OBJECT_APP, name))?;
            if handles.is_empty() {
                return Err(Error::ObjectNotFound(name.clone()));
            }
            for handle in handles {
                s.destroy_object(handle).map_err(call("C_DestroyObject"))?;
            }
            Ok(())
        })
    }

    pub(crate) fn names(&self) -> Result<Vec<Label>> {
        self.token.with_session(|s| {
            let query = [
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Application(OBJECT_APP.to_vec()),
            ];
            let mut names = BTreeSet::new();
            for handle in find(s, &query)? {
                let attrs =
                    s.get_attributes(handle, &[AttributeType::Label]).map_err(call("C_GetAttributeValue"))?;
                if let Some(Attribute::Label(label)) = attrs.into_iter().next()
                    && let Some(label) = String::from_utf8(label).ok().and_then(|l| Label::new(l).ok())
                {
                    names.insert(label);
                }
            }
            Ok(names.into_iter().collect())
        })
    }

    pub(crate) fn read_counter(&self, name: &Label) -> Result<u64> {
        self.token.with_session(|s| Ok(newest(&versions(s, COUNTER_APP, name)?).map_or(0, |v| generation(v))))
    }

    /// Sets the counter to `next(current)`, durably, and returns the new value.
    pub(crate) fn update_counter(&self, name: &Label, next: impl FnOnce(u64) -> Result<u64>) -> Result<u64> {
        let _serial = lock(&self.object_writes);
        self.token.with_session(|s| {
            let old = versions(s, COUNTER_APP, name)?;
            let current = newest(&old).map_or(0, |v| generation(v));
            let value = next(current)?;
            if value != current || old.len() > 1 {
                replace(s, COUNTER_APP, name, value.to_be_bytes().to_vec(), &old)?;
            }
            Ok(value)
        })
    }
}
