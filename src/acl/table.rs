//! The ACL view of the command table: one id per command and per subcommand (Redis's
//! `cmd->id`), with its categories, built once from `commands::COMMANDS`.

use super::category;
use crate::commands::{COMMANDS, Command, KeySpec};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::OnceLock;

/// One command or subcommand.
pub struct Entry {
    /// `get`, `client|kill`.
    pub name: &'static str,
    pub flags: u32,
    pub categories: u32,
    /// The container's id, for a subcommand.
    pub parent: Option<u32>,
    /// The ids of a container's subcommands.
    pub subs: Range<u32>,
    /// Redis's key specs with their access flags, when the command has keys.
    pub key_specs: Option<&'static [KeySpec]>,
}

pub struct Table {
    pub entries: Vec<Entry>,
    by_name: HashMap<String, u32>,
}

impl Table {
    fn build() -> Self {
        let mut entries: Vec<Entry> = COMMANDS
            .iter()
            .map(|c| Entry {
                name: c.name,
                flags: c.flags,
                categories: category::of(c.name, c.flags),
                parent: None,
                subs: 0..0,
                key_specs: specs_of(c.name),
            })
            .collect();
        for (i, c) in COMMANDS.iter().enumerate() {
            let start = entries.len() as u32;
            for &(name, _, f) in c.subcommands {
                entries.push(Entry {
                    name,
                    flags: f,
                    categories: category::of(name, f),
                    parent: Some(i as u32),
                    subs: 0..0,
                    key_specs: specs_of(name),
                });
            }
            entries[i].subs = start..entries.len() as u32;
        }
        let by_name = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.to_string(), i as u32))
            .collect();
        Self { entries, by_name }
    }

    /// The id of `name` (`get`, `client|kill`, any case), as Redis's `ACLLookupCommand`.
    pub fn lookup(&self, name: &str) -> Option<u32> {
        self.by_name.get(&name.to_ascii_lowercase()).copied()
    }

    /// The id a request runs as: its subcommand's for a container.
    pub fn id_of(&self, cmd: &'static Command, argv: &[&[u8]]) -> u32 {
        let top = cmd.index() as u32;
        let e = &self.entries[top as usize];
        if e.subs.is_empty() || argv.len() < 2 {
            return top;
        }
        let prefix = cmd.name.len() + 1;
        e.subs
            .clone()
            .find(|&s| {
                self.entries[s as usize].name.as_bytes()[prefix..].eq_ignore_ascii_case(argv[1])
            })
            .unwrap_or(top)
    }

    pub fn get(&self, id: u32) -> &Entry {
        &self.entries[id as usize]
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Redis 7.0's key specs of a command or `container|subcommand` (`catalog`).
pub fn specs_of(name: &str) -> Option<&'static [KeySpec]> {
    let t = super::catalog::KEY_SPECS;
    t.binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| t[i].1)
}

/// The ACL table, built at first use.
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(Table::build)
}
