//! Interned values of one key, so the search's model state is a small integer.
//!
//! Every value the search can meet is a node: the missing value, a literal
//! (the bytes of a `Put`, or of what a `Get` read), or an earlier value with
//! an `Append` suffix after it. Nodes are interned by content: two nodes never
//! hold the same bytes, so two states are equal exactly when their ids are.
//! Content is found through an FNV hash that extends from a value to the
//! value with a suffix appended, and confirmed by an exact comparison, so a
//! hash collision costs time, never correctness.

use alloc::vec::Vec;
use hashbrown::HashTable;

use crate::hash::Fnv;

/// A value of the key, interned: equal ids if and only if equal values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct ValueId(u32);

impl ValueId {
    /// The key is missing.
    pub(super) const MISSING: ValueId = ValueId(0);

    /// A number to mix into hashes.
    pub(super) fn as_u64(self) -> u64 {
        u64::from(self.0)
    }
}

#[derive(Clone, Copy, Debug)]
enum Content<'a> {
    Missing,
    Literal(&'a [u8]),
    /// `parent`'s bytes (empty if `parent` is missing), then `suffix`.
    Appended {
        parent: ValueId,
        suffix: &'a [u8],
    },
}

#[derive(Clone, Copy, Debug)]
struct Node<'a> {
    content: Content<'a>,
    /// FNV-1a of the bytes (of no bytes for the missing value).
    hash: u64,
    len: usize,
}

/// A transition already computed: appending the suffix of operation
/// `operation` to `parent` gives `result`.
#[derive(Clone, Copy, Debug)]
struct Transition {
    hash: u64,
    parent: ValueId,
    operation: u32,
    result: ValueId,
}

/// The interned values of one key.
#[derive(Debug)]
pub(super) struct Values<'a> {
    /// Invariant: `nodes[0]` is the missing value; every other node's content
    /// differs from all others'.
    nodes: Vec<Node<'a>>,
    /// Every node but the missing one, found by content hash.
    by_content: HashTable<ValueId>,
    appended: HashTable<Transition>,
    scratch: Vec<u8>,
}

/// Spreads a 64-bit value over all bits (the SplitMix64 finalizer).
pub(super) fn mix(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    value ^ (value >> 31)
}

impl<'a> Values<'a> {
    /// Only the missing value.
    pub(super) fn new() -> Values<'a> {
        Values {
            nodes: alloc::vec![Node {
                content: Content::Missing,
                hash: Fnv::new().finish(),
                len: 0,
            }],
            by_content: HashTable::new(),
            appended: HashTable::new(),
            scratch: Vec::new(),
        }
    }

    /// The id of these bytes as a present value.
    pub(super) fn intern_literal(&mut self, bytes: &'a [u8]) -> ValueId {
        let hash = Fnv::new().write(bytes).finish();
        let nodes = &self.nodes;
        let found = self.by_content.find(mix(hash), |&id| {
            let node = &nodes[id.0 as usize];
            node.hash == hash && node.len == bytes.len() && content_equals(nodes, id, bytes)
        });
        match found {
            Some(&id) => id,
            None => self.insert(Node {
                content: Content::Literal(bytes),
                hash,
                len: bytes.len(),
            }),
        }
    }

    /// The value after appending `suffix` (the suffix of operation
    /// `operation`, always the same bytes for the same operation) to `parent`.
    pub(super) fn append(&mut self, parent: ValueId, operation: u32, suffix: &'a [u8]) -> ValueId {
        let transition_hash = mix(parent.as_u64() ^ (u64::from(operation) << 32));
        if let Some(transition) = self.appended.find(transition_hash, |transition| {
            transition.parent == parent && transition.operation == operation
        }) {
            return transition.result;
        }
        let parent_node = self.nodes[parent.0 as usize];
        let hash = Fnv::from_value(parent_node.hash).write(suffix).finish();
        let len = parent_node.len + suffix.len();
        let nodes = &self.nodes;
        let scratch = &mut self.scratch;
        let found = self.by_content.find(mix(hash), |&id| {
            let node = &nodes[id.0 as usize];
            if node.hash != hash || node.len != len {
                return false;
            }
            materialize_into(nodes, id, scratch);
            match scratch.strip_suffix(suffix) {
                Some(head) => content_equals(nodes, parent, head),
                None => false,
            }
        });
        let result = match found {
            Some(&id) => id,
            None => self.insert(Node {
                content: Content::Appended { parent, suffix },
                hash,
                len,
            }),
        };
        self.appended.insert_unique(
            transition_hash,
            Transition {
                hash: transition_hash,
                parent,
                operation,
                result,
            },
            |transition| transition.hash,
        );
        result
    }

    fn insert(&mut self, node: Node<'a>) -> ValueId {
        let id = ValueId(
            u32::try_from(self.nodes.len()).expect("fewer than 2^32 distinct values per key"),
        );
        self.nodes.push(node);
        let nodes = &self.nodes;
        self.by_content
            .insert_unique(mix(node.hash), id, |&id| mix(nodes[id.0 as usize].hash));
        id
    }

    /// True if appends alone can turn `base` into `target` (`None`: missing):
    /// `base` is missing (appends start from empty), or both are present and
    /// `target` starts with `base`. An over-approximation when `base` is
    /// missing, exact otherwise.
    pub(super) fn can_grow_into(&self, base: ValueId, target: Option<&[u8]>) -> bool {
        match target {
            _ if base == ValueId::MISSING => true,
            None => false,
            Some(target) => {
                let len = self.nodes[base.0 as usize].len;
                target.len() >= len && content_equals(&self.nodes, base, &target[..len])
            }
        }
    }

    /// How many bytes the value holds (0 if missing).
    pub(super) fn len(&self, id: ValueId) -> usize {
        self.nodes[id.0 as usize].len
    }

    /// The bytes of a value, `None` if missing.
    pub(super) fn bytes(&self, id: ValueId) -> Option<Vec<u8>> {
        if id == ValueId::MISSING {
            return None;
        }
        let mut bytes = Vec::new();
        materialize_into(&self.nodes, id, &mut bytes);
        Some(bytes)
    }
}

/// Writes the bytes of `id` (none for the missing value) into `out`, replacing its contents.
fn materialize_into(nodes: &[Node<'_>], id: ValueId, out: &mut Vec<u8>) {
    out.clear();
    out.resize(nodes[id.0 as usize].len, 0);
    let mut end = out.len();
    let mut current = id;
    loop {
        match nodes[current.0 as usize].content {
            Content::Missing => break,
            Content::Literal(bytes) => {
                out[end - bytes.len()..end].copy_from_slice(bytes);
                break;
            }
            Content::Appended { parent, suffix } => {
                out[end - suffix.len()..end].copy_from_slice(suffix);
                end -= suffix.len();
                current = parent;
            }
        }
    }
}

/// True if `id` holds exactly `bytes` (the missing value counting as empty).
fn content_equals(nodes: &[Node<'_>], id: ValueId, mut bytes: &[u8]) -> bool {
    let mut current = id;
    loop {
        let node = &nodes[current.0 as usize];
        if node.len != bytes.len() {
            return false;
        }
        match node.content {
            Content::Missing => return bytes.is_empty(),
            Content::Literal(literal) => return literal == bytes,
            Content::Appended { parent, suffix } => match bytes.strip_suffix(suffix) {
                Some(head) => {
                    bytes = head;
                    current = parent;
                }
                None => return false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_contents_get_equal_ids() {
        let mut values = Values::new();
        let ab = values.intern_literal(b"ab");
        let a = values.intern_literal(b"a");
        let empty = values.intern_literal(b"");
        assert_ne!(
            empty,
            ValueId::MISSING,
            "an empty value is not a missing key"
        );
        assert_eq!(values.intern_literal(b"ab"), ab);

        let a_then_b = values.append(a, 1, b"b");
        assert_eq!(a_then_b, ab, "\"a\" + \"b\" is the literal \"ab\"");
        let missing_then_a = values.append(ValueId::MISSING, 2, b"a");
        assert_eq!(
            missing_then_a, a,
            "appending to a missing key starts from empty"
        );
        let empty_then_ab = values.append(empty, 3, b"ab");
        assert_eq!(empty_then_ab, ab);
        let missing_then_nothing = values.append(ValueId::MISSING, 4, b"");
        assert_eq!(
            missing_then_nothing, empty,
            "an empty append creates the key"
        );

        let abc = values.append(ab, 5, b"c");
        let a_then_bc = values.append(a, 6, b"bc");
        assert_eq!(abc, a_then_bc, "two append chains with the same bytes");
        assert_ne!(abc, ab);
        assert_eq!(values.bytes(abc).as_deref(), Some(&b"abc"[..]));
        assert_eq!(values.bytes(ValueId::MISSING), None);
        // Memoized transitions return the same ids.
        assert_eq!(values.append(ab, 5, b"c"), abc);

        let cases: [(ValueId, Option<&[u8]>, bool); 7] = [
            (ValueId::MISSING, None, true),
            (ValueId::MISSING, Some(b"xyz"), true),
            (empty, None, false),
            (empty, Some(b"xyz"), true),
            (abc, Some(b"abcd"), true),
            (abc, Some(b"abc"), true),
            (abc, Some(b"abd"), false),
        ];
        for (base, target, expected) in cases {
            assert_eq!(
                values.can_grow_into(base, target),
                expected,
                "{base:?} -> {target:?}"
            );
        }
    }
}
