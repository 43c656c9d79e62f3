//! Lua scripting: EVAL scripts and FUNCTION libraries, one Lua 5.1 interpreter per shard.
//!
//! What is shared between shards ([`Shared`], in `ServerShared`) is source text: the script
//! cache (SHA1 → body) and the function libraries (name → code and metadata), each with a
//! generation counter. Each shard's [`Engine`] compiles a script the first time it runs it
//! there and reloads every library when the library generation moved, so a script loaded
//! on any connection runs on every shard.
//!
//! A script runs on one shard (see `commands/scripting.rs`), inside one command: nothing
//! else runs on that shard meanwhile, so it is atomic there. `redis.call` runs commands of
//! that shard directly through the command table, and those of other shards by
//! synchronous calls while the script holds every shard (`atomic::remote`).

pub mod busy;
mod call;
pub use call::NON_LOCAL_KEY;
mod convert;
pub mod functions;
mod lib_bit;
mod lib_cjson;
mod lib_cmsgpack;
mod lib_struct;
mod sandbox;

use crate::client::Client;
use crate::shard::ShardData;
use mlua::{Function, Lua, Table, Value};
use percore_net::resp::{Protocol, ReplyWriter};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub use functions::Library;

/// Lua instructions between two checks of the clock and the kill flag (Redis: 100000).
pub const HOOK_INSTRUCTIONS: u32 = 100_000;
/// How long FUNCTION LOAD lets a library's code run (Redis 7.0's `LOAD_TIMEOUT_MS`): it
/// should only register functions. Not for the primary's stream, RDB files or FUNCTION
/// RESTORE, as Redis.
pub const LOAD_TIMEOUT_MS: u64 = 500;
/// The error a library's code gets past [`LOAD_TIMEOUT_MS`].
pub const LOAD_TIMEOUT_ERR: &str = "FUNCTION LOAD timeout";
/// Nesting depth of a Lua table converted to a reply, beyond which the reply is an error
/// (a table that contains itself would otherwise recurse without end).
pub const MAX_REPLY_DEPTH: usize = 1000;
/// The most scripts the shared cache holds; SCRIPT LOAD / EVAL beyond it evict nothing and
/// are refused (Redis keeps every script until SCRIPT FLUSH; this bounds a runaway client).
pub const MAX_CACHED_SCRIPTS: usize = 1_000_000;

/// Script flags (`#!lua flags=...`, `redis.register_function{flags=...}`).
pub mod flags {
    pub const NO_WRITES: u32 = 1 << 0;
    pub const ALLOW_OOM: u32 = 1 << 1;
    pub const ALLOW_STALE: u32 = 1 << 2;
    pub const NO_CLUSTER: u32 = 1 << 3;
    pub const ALLOW_CROSS_SLOT: u32 = 1 << 4;
    /// A script without a shebang: Redis's compatibility mode (may write, no flag checks).
    pub const EVAL_COMPAT: u32 = 1 << 5;

    /// Names as Redis spells them, in the order FUNCTION LIST prints them.
    pub const NAMES: [(u32, &str); 5] = [
        (NO_WRITES, "no-writes"),
        (ALLOW_OOM, "allow-oom"),
        (ALLOW_STALE, "allow-stale"),
        (NO_CLUSTER, "no-cluster"),
        (ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
    ];

    pub fn parse(name: &str) -> Option<u32> {
        NAMES.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }
}

/// What a busy shard is running, for `-BUSY` texts and SCRIPT KILL / FUNCTION KILL.
pub const BUSY_NONE: u8 = 0;
pub const BUSY_EVAL: u8 = 1;
pub const BUSY_FUNCTION: u8 = 2;

pub const BUSY_EVAL_ERR: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
pub const BUSY_FUNCTION_ERR: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";
pub const UNKILLABLE_ERR: &str = "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.";
pub const NOTBUSY_ERR: &str = "NOTBUSY No scripts in execution right now.";
pub const KILLED_ERR: &str = "ERR Script killed by user with SCRIPT KILL...";

/// One shard's running script, as other shards see it.
#[derive(Default)]
pub struct BusySlot {
    /// `BUSY_NONE`, or what has been running longer than `busy-reply-threshold`.
    pub state: AtomicU8,
    /// The running script has written (SCRIPT KILL answers UNKILLABLE).
    pub wrote: AtomicBool,
    /// SCRIPT KILL / FUNCTION KILL asked the running script to stop.
    pub kill: AtomicBool,
    /// FUNCTION STATS: the running function's name and command, and its start (Unix ms).
    pub running: Mutex<Option<Running>>,
}

/// A running function for FUNCTION STATS: its name, its command, its start (Unix ms).
pub type Running = (String, Vec<Vec<u8>>, i64);

/// Script state every shard shares.
pub struct Shared {
    cache: Mutex<HashMap<[u8; 40], Arc<[u8]>>>,
    cache_generation: AtomicU64,
    libraries: RwLock<BTreeMap<String, Arc<Library>>>,
    libs_generation: AtomicU64,
    pub busy: Vec<BusySlot>,
    /// How many shards are busy (past the threshold): dispatch reads only this.
    pub busy_count: AtomicUsize,
    /// Scripts' synchronous calls to other shards (`atomic::remote`).
    pub calls: crate::atomic::remote::Calls,
}

impl Shared {
    pub fn new(shards: usize) -> Self {
        Self {
            cache: Mutex::new(HashMap::new()),
            cache_generation: AtomicU64::new(0),
            libraries: RwLock::new(BTreeMap::new()),
            libs_generation: AtomicU64::new(0),
            busy: (0..shards).map(|_| BusySlot::default()).collect(),
            busy_count: AtomicUsize::new(0),
            calls: crate::atomic::remote::Calls::new(shards),
        }
    }

    pub fn script(&self, sha: &[u8; 40]) -> Option<Arc<[u8]>> {
        self.cache.lock().ok()?.get(sha).cloned()
    }

    pub fn script_exists(&self, sha: &[u8; 40]) -> bool {
        self.cache.lock().is_ok_and(|c| c.contains_key(sha))
    }

    /// Adds a script body; false when the cache is full.
    pub fn add_script(&self, sha: [u8; 40], body: &[u8]) -> bool {
        let Ok(mut c) = self.cache.lock() else {
            return false;
        };
        if c.contains_key(&sha) {
            return true;
        }
        if c.len() >= MAX_CACHED_SCRIPTS {
            return false;
        }
        c.insert(sha, Arc::from(body));
        true
    }

    pub fn flush_scripts(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
        self.cache_generation.fetch_add(1, Ordering::Release);
    }

    /// Every library, by name.
    pub fn libraries(&self) -> BTreeMap<String, Arc<Library>> {
        self.libraries.read().map(|l| l.clone()).unwrap_or_default()
    }

    /// Replaces the whole library set (FUNCTION LOAD/DELETE/FLUSH/RESTORE, RDB load).
    pub fn set_libraries(&self, libs: BTreeMap<String, Arc<Library>>) {
        if let Ok(mut l) = self.libraries.write() {
            *l = libs;
        }
        self.libs_generation.fetch_add(1, Ordering::Release);
    }

    /// Edits the library set under its lock; the closure's error leaves it unchanged.
    pub fn edit_libraries<R>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, Arc<Library>>) -> Result<R, String>,
    ) -> Result<R, String> {
        let mut l = self
            .libraries
            .write()
            .map_err(|_| "ERR internal error: library lock".to_string())?;
        let mut copy = l.clone();
        let r = f(&mut copy)?;
        *l = copy;
        drop(l);
        self.libs_generation.fetch_add(1, Ordering::Release);
        Ok(r)
    }

    /// Whether any shard is running a script past `busy-reply-threshold`, and the error
    /// other clients get meanwhile.
    #[inline]
    pub fn busy_error(&self) -> Option<&'static str> {
        if self.busy_count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let any_fn = self
            .busy
            .iter()
            .any(|b| b.state.load(Ordering::Relaxed) == BUSY_FUNCTION);
        Some(if any_fn {
            BUSY_FUNCTION_ERR
        } else {
            BUSY_EVAL_ERR
        })
    }

    /// SCRIPT KILL (`function == false`) or FUNCTION KILL: the reply's error, or `None`
    /// when a script was asked to stop.
    pub fn kill(&self, function: bool) -> Option<&'static str> {
        let mut found = None;
        for b in &self.busy {
            let s = b.state.load(Ordering::Acquire);
            if s != BUSY_NONE {
                found = Some((b, s));
                break;
            }
        }
        let Some((slot, state)) = found else {
            return Some(NOTBUSY_ERR);
        };
        if slot.wrote.load(Ordering::Acquire) {
            return Some(UNKILLABLE_ERR);
        }
        if !function && state == BUSY_FUNCTION {
            return Some(BUSY_FUNCTION_ERR);
        }
        if function && state == BUSY_EVAL {
            return Some(BUSY_EVAL_ERR);
        }
        slot.kill.store(true, Ordering::Release);
        None
    }
}

/// Replaces the function libraries with those an RDB file held (compiled once here to
/// read their metadata), as Redis does when it loads a dump.
pub fn install_loaded(
    shared: &crate::server::ServerShared,
    codes: &[Vec<u8>],
) -> Result<(), String> {
    if codes.is_empty() && shared.scripts.libraries().is_empty() {
        return Ok(());
    }
    put_loaded(shared, BTreeMap::new(), codes, true)
}

/// DEBUG RELOAD NOFLUSH: adds the libraries loaded from a file to those in memory; a
/// library already there is replaced with MERGE, else an error (Redis's
/// `RDBFLAGS_ALLOW_DUP`).
pub fn add_loaded(
    shared: &crate::server::ServerShared,
    codes: &[Vec<u8>],
    merge: bool,
) -> Result<(), String> {
    if codes.is_empty() {
        return Ok(());
    }
    put_loaded(shared, shared.scripts.libraries(), codes, merge)
}

/// Compiles `codes` once to read their metadata, adds them to `libs` (a name already
/// there is replaced when `replace`, else an error) and installs the result.
fn put_loaded(
    shared: &crate::server::ServerShared,
    mut libs: BTreeMap<String, Arc<Library>>,
    codes: &[Vec<u8>],
    replace: bool,
) -> Result<(), String> {
    let engine = Engine::new(0)?;
    for code in codes {
        let (name, regs) = functions::load_library(&engine, code, None)?;
        if libs.contains_key(&name) && !replace {
            return Err(format!("Library '{name}' already exists"));
        }
        let lib = Library {
            name: name.clone(),
            code: code.clone(),
            functions: regs
                .into_iter()
                .map(|r| functions::FunctionInfo {
                    name: r.name,
                    description: r.description,
                    flags: r.flags,
                })
                .collect(),
        };
        libs.insert(name, Arc::new(lib));
    }
    shared.scripts.set_libraries(libs);
    Ok(())
}

/// The hasher of the compiled-script map: percore's keyed byte hash (a SipHash of the
/// 40-byte key cost more than the rest of the lookup), seeded per engine.
#[derive(Clone)]
pub struct ShaHasher(u64);

impl ShaHasher {
    fn new() -> Self {
        Self(crate::server::random_seed())
    }
}

impl std::hash::BuildHasher for ShaHasher {
    type Hasher = ShaHash;
    fn build_hasher(&self) -> ShaHash {
        ShaHash(self.0)
    }
}

/// One hash of a SHA1 key (see [`ShaHasher`]).
pub struct ShaHash(u64);

impl std::hash::Hasher for ShaHash {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = percore_engine::hash::hash_bytes(self.0, bytes);
    }
    fn write_usize(&mut self, _len: usize) {
        // The array's length (always 40) adds nothing.
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Lowercase hex SHA1 of `body`.
pub fn sha1_hex(body: &[u8]) -> [u8; 40] {
    let digest = sha1_smol::Sha1::from(body).digest().bytes();
    let mut out = [0u8; 40];
    for (i, b) in digest.iter().enumerate() {
        out[2 * i] = b"0123456789abcdef"[usize::from(b >> 4)];
        out[2 * i + 1] = b"0123456789abcdef"[usize::from(b & 15)];
    }
    out
}

/// A 40-character SHA1 argument in lower case, or `None` when it is not 40 bytes long.
pub fn sha_arg(arg: &[u8]) -> Option<[u8; 40]> {
    let mut sha: [u8; 40] = arg.try_into().ok()?;
    sha.make_ascii_lowercase();
    Some(sha)
}

/// The state of the script being run, shared with the Lua callbacks.
pub struct RunState {
    /// RESP version `redis.call` replies are converted from (`redis.setresp`).
    pub resp: Cell<u8>,
    pub flags: Cell<u32>,
    /// Whether EVAL_RO / FCALL_RO runs it (writes refused).
    pub read_only: Cell<bool>,
    pub wrote: Cell<bool>,
    pub db: Cell<usize>,
    pub shard: Cell<usize>,
    pub start_ns: Cell<u64>,
    pub busy_after_ns: Cell<u64>,
    /// BUSY_EVAL or BUSY_FUNCTION while running.
    pub kind: Cell<u8>,
    pub busy: Cell<bool>,
    pub killed: Cell<bool>,
    /// The script's name in errors and logs: its SHA1 or the function's name.
    pub name: RefCell<String>,
    /// FUNCTION LOAD in progress: functions registered so far.
    pub loading: RefCell<Option<Vec<functions::Registered>>>,
    /// While FUNCTION LOAD runs a library's code: when (monotonic ns) it times out
    /// ([`LOAD_TIMEOUT_MS`]); `u64::MAX` otherwise.
    pub load_deadline_ns: Cell<u64>,
    pub shared: RefCell<Option<Arc<crate::server::ServerShared>>>,
    /// The client commands like SELECT run with inside scripts.
    pub client: RefCell<Option<Box<Client>>>,
}

/// The connectionless client of a shard's scripts.
pub fn script_client() -> Box<Client> {
    Box::new(Client::new(
        percore_net::reactor::ConnId {
            index: u32::MAX,
            generation: u32::MAX,
        },
        0,
        0,
        true,
    ))
}

impl RunState {
    fn new() -> Self {
        Self {
            resp: Cell::new(2),
            flags: Cell::new(0),
            read_only: Cell::new(false),
            wrote: Cell::new(false),
            db: Cell::new(0),
            shard: Cell::new(0),
            start_ns: Cell::new(0),
            busy_after_ns: Cell::new(u64::MAX),
            kind: Cell::new(BUSY_NONE),
            busy: Cell::new(false),
            killed: Cell::new(false),
            name: RefCell::new(String::new()),
            loading: RefCell::new(None),
            load_deadline_ns: Cell::new(u64::MAX),
            shared: RefCell::new(None),
            client: RefCell::new(None),
        }
    }
}

thread_local! {
    /// The shard a script is running on, set only while [`Engine::with_shard`] runs.
    static CURRENT_SHARD: Cell<*mut ShardData> = const { Cell::new(std::ptr::null_mut()) };
}

/// Runs `f` with the shard the current script runs on (`redis.call`).
pub(crate) fn with_current_shard<R>(f: impl FnOnce(&mut ShardData) -> R) -> Option<R> {
    let ptr = CURRENT_SHARD.with(Cell::get);
    if ptr.is_null() {
        return None;
    }
    Some(current_shard_call(ptr, f))
}

#[expect(
    unsafe_code,
    reason = "a Lua callback reaches the shard that is running the script"
)]
fn current_shard_call<R>(ptr: *mut ShardData, f: impl FnOnce(&mut ShardData) -> R) -> R {
    // SAFETY: `ptr` is set by `Engine::with_shard` from the `&mut ShardData` it was given,
    // only for the duration of the Lua call it makes, on this thread; that caller does not
    // touch the shard until the call returns (the Lua engine itself was taken out of the
    // shard first, so no other reference into it is live), and callbacks never nest
    // (EVAL/FCALL are refused inside scripts), so this is the only reference in use.
    let data = unsafe { &mut *ptr };
    f(data)
}

/// One shard's Lua interpreter with its compiled scripts and loaded functions.
pub struct Engine {
    pub lua: Lua,
    /// The real globals table (the scripts see a read-only proxy of it).
    globals: Table,
    /// The library-loading environment's switch (see `sandbox`).
    pub(crate) run: Rc<RunState>,
    /// Compiled scripts by SHA1, with their flags.
    scripts: HashMap<[u8; 40], (Function, u32), ShaHasher>,
    scripts_generation: u64,
    /// Loaded functions by lower-case name, with their flags and registered name.
    functions: HashMap<String, (Function, u32, Rc<str>)>,
    libs_generation: u64,
    /// The message handler scripts and functions run with.
    handler: Function,
    /// Scripts run since the last garbage-collection step (see [`GC_CYCLE_PERIOD`]).
    since_gc: u32,
}

impl Engine {
    pub fn new(shard: usize) -> Result<Self, String> {
        let run = Rc::new(RunState::new());
        run.shard.set(shard);
        let built = sandbox::build(&run).map_err(|e| format!("Lua start-up failed: {e}"))?;
        Ok(Self {
            lua: built.lua,
            globals: built.globals,
            run,
            scripts: HashMap::with_hasher(ShaHasher::new()),
            scripts_generation: 0,
            functions: HashMap::new(),
            libs_generation: u64::MAX,
            handler: built.handler,
            since_gc: 0,
        })
    }

    /// Compiles a script body (after its shebang line) into a function, or the
    /// compilation error Redis reports.
    pub fn compile_script(&self, body: &[u8], code_start: usize) -> Result<Function, String> {
        // The shebang line is dropped but its newline kept, so line numbers match the
        // body's.
        let code = body[code_start..].to_vec();
        self.lua
            .load(code)
            .set_name("@user_script")
            .into_function()
            .map_err(|e| {
                format!(
                    "ERR Error compiling script (new function): {}",
                    sandbox::lua_error_text(&e)
                )
            })
    }

    /// Drops the compiled scripts when SCRIPT FLUSH emptied the shared cache since.
    fn follow_flush(&mut self, shared: &Shared) {
        let generation = shared.cache_generation.load(Ordering::Acquire);
        if generation != self.scripts_generation {
            self.scripts.clear();
            self.scripts_generation = generation;
            self.lua.gc_collect().ok();
        }
    }

    /// Whether `sha` is compiled here: then it is in the shared cache too (scripts leave
    /// the cache only by SCRIPT FLUSH, which empties this set first).
    pub fn knows(&self, shared: &Shared, sha: &[u8; 40]) -> bool {
        shared.cache_generation.load(Ordering::Acquire) == self.scripts_generation
            && self.scripts.contains_key(sha)
    }

    /// The compiled function for `sha` with its flags, compiling the cached body on first
    /// use here. `Err(None)`: no such script; `Err(Some(text))`: it does not compile.
    pub fn script(
        &mut self,
        shared: &Shared,
        sha: &[u8; 40],
    ) -> Result<(Function, u32), Option<String>> {
        self.follow_flush(shared);
        if let Some((f, flags)) = self.scripts.get(sha) {
            return Ok((f.clone(), *flags));
        }
        let body = shared.script(sha).ok_or(None)?;
        let (flags, start) = functions::eval_shebang(&body).map_err(Some)?;
        let f = self.compile_script(&body, start).map_err(Some)?;
        self.scripts.insert(*sha, (f.clone(), flags));
        Ok((f, flags))
    }

    /// Caches a compiled script under `sha`.
    pub fn remember(&mut self, shared: &Shared, sha: [u8; 40], f: Function, flags: u32) {
        self.follow_flush(shared);
        self.scripts.insert(sha, (f, flags));
    }

    /// The function `name` with its flags, reloading the libraries if they changed.
    /// The function `name` (in any case), with its flags and its name as registered.
    pub fn function(&mut self, shared: &Shared, name: &str) -> Option<(Function, u32, Rc<str>)> {
        let generation = shared.libs_generation.load(Ordering::Acquire);
        if generation != self.libs_generation {
            self.functions.clear();
            for lib in shared.libraries().values() {
                // It loaded when it was added; a library that could not load again here
                // would keep its functions out (never expected).
                if let Ok((_, regs)) = functions::load_library(self, &lib.code, None) {
                    for r in regs {
                        // Function names are case-insensitive (Redis's functionDictType).
                        let key = r.name.to_ascii_lowercase();
                        self.functions
                            .insert(key, (r.callback, r.flags, Rc::from(r.name)));
                    }
                }
            }
            self.libs_generation = generation;
        }
        self.functions.get(&name.to_ascii_lowercase()).cloned()
    }

    /// Runs `f` with the shard reachable from the Lua callbacks.
    pub fn with_shard<R>(data: &mut ShardData, f: impl FnOnce(&mut Self) -> R) -> R {
        let mut engine = match data.lua.take() {
            Some(e) => e,
            None => match Engine::new(data.id) {
                Ok(e) => Box::new(e),
                Err(text) => panic!("{text}"),
            },
        };
        engine.run.shared.replace(Some(Arc::clone(&data.shared)));
        let ptr: *mut ShardData = data;
        CURRENT_SHARD.with(|c| c.set(ptr));
        let r = f(&mut engine);
        CURRENT_SHARD.with(|c| c.set(std::ptr::null_mut()));
        data.lua = Some(engine);
        r
    }

    /// Runs a script or a function and writes its reply (or error) in `proto` to `out`.
    #[expect(clippy::too_many_arguments, reason = "the parts of one invocation")]
    pub fn invoke(
        &mut self,
        data_shared: &crate::server::ServerShared,
        func: &Function,
        name: &str,
        kind: u8,
        script_flags: u32,
        read_only: bool,
        db: usize,
        keys: &[&[u8]],
        args: &[&[u8]],
        command: &[&[u8]],
        busy_threshold_ms: u64,
        proto: Protocol,
        out: &mut Vec<u8>,
    ) {
        let run = &self.run;
        run.resp.set(2);
        run.flags.set(script_flags);
        run.read_only
            .set(read_only || script_flags & flags::NO_WRITES != 0);
        run.wrote.set(false);
        run.db.set(db);
        run.killed.set(false);
        run.busy.set(false);
        run.kind.set(kind);
        name.clone_into(&mut run.name.borrow_mut());
        let now = percore_net::sys::monotonic_ns();
        run.start_ns.set(now);
        run.busy_after_ns
            .set(now.saturating_add(busy_threshold_ms.saturating_mul(1_000_000)));
        let slot = &data_shared.scripts.busy[run.shard.get()];
        slot.kill.store(false, Ordering::Relaxed);
        slot.wrote.store(false, Ordering::Relaxed);
        if kind == BUSY_FUNCTION
            && let Ok(mut r) = slot.running.lock()
        {
            // The command as the client sent it (Redis's `scriptGetCaller()->argv`).
            *r = Some((
                name.to_string(),
                command.iter().map(|a| a.to_vec()).collect(),
                percore_net::reactor::unix_ms(),
            ));
        }
        let result = self.call(func, kind, keys, args);
        if kind == BUSY_FUNCTION
            && let Ok(mut r) = slot.running.lock()
        {
            *r = None;
        }
        if run.busy.get() {
            slot.state.store(BUSY_NONE, Ordering::Release);
            data_shared
                .scripts
                .busy_count
                .fetch_sub(1, Ordering::AcqRel);
            run.busy.set(false);
        }
        run.kind.set(BUSY_NONE);
        let mut w = ReplyWriter::new(out, proto);
        match result {
            Ok(v) => {
                if let Err(text) = convert::lua_to_reply(&v, &mut w, self.run.resp.get(), proto, 0)
                {
                    w.error(&text);
                }
            }
            Err(text) => w.error(&text),
        }
        // Keep the interpreter's garbage from piling up between scripts, as Redis: every
        // `GC_CYCLE_PERIOD` scripts, that many steps of the collector.
        self.since_gc += 1;
        if self.since_gc >= GC_CYCLE_PERIOD {
            self.since_gc = 0;
            gc_steps(&self.lua, GC_CYCLE_PERIOD);
        }
    }

    /// Runs a script (KEYS and ARGV set as globals) or a function (called with the two
    /// tables) under the message handler, as Redis's `luaCallFunction`: the tables are
    /// built and the function called with the Lua C API, in one protected call.
    fn call(
        &self,
        func: &Function,
        kind: u8,
        keys: &[&[u8]],
        args: &[&[u8]],
    ) -> Result<Value, String> {
        let eval = kind == BUSY_EVAL;
        #[expect(
            unsafe_code,
            reason = "KEYS/ARGV and the protected call through the Lua C API, as Redis"
        )]
        // SAFETY: `exec_raw` pushes the three arguments (handler, function, globals: stack
        // slots 1-3) and runs the closure in protected mode with them as its frame, which
        // has LUA_MINSTACK free slots: at most four values are pushed above them at a time
        // (table, string; then function and two tables). Every `&[u8]` is alive for the
        // whole call. A Lua error (out of memory) long-jumps out of the closure, which
        // owns nothing to drop. The closure leaves exactly `(ok, value)` in slots 1-2.
        let result: mlua::Result<(bool, Value)> = unsafe {
            self.lua
                .exec_raw((&self.handler, func, &self.globals), |l| {
                    use mlua::ffi;
                    let array = |l: *mut ffi::lua_State, items: &[&[u8]]| {
                        ffi::lua_createtable(l, items.len().try_into().unwrap_or(0), 0);
                        for (i, a) in items.iter().enumerate() {
                            ffi::lua_pushlstring(l, a.as_ptr().cast(), a.len());
                            ffi::lua_rawseti(l, -2, (i + 1) as ffi::lua_Integer);
                        }
                    };
                    let status = if eval {
                        ffi::lua_pushlstring(l, c"KEYS".as_ptr(), 4);
                        array(l, keys);
                        ffi::lua_rawset(l, 3);
                        ffi::lua_pushlstring(l, c"ARGV".as_ptr(), 4);
                        array(l, args);
                        ffi::lua_rawset(l, 3);
                        ffi::lua_pushvalue(l, 2);
                        ffi::lua_pcall(l, 0, 1, 1)
                    } else {
                        ffi::lua_pushvalue(l, 2);
                        array(l, keys);
                        array(l, args);
                        ffi::lua_pcall(l, 2, 1, 1)
                    };
                    // [handler, function, globals, value] -> [ok, value]
                    ffi::lua_pushboolean(l, i32::from(status == 0));
                    ffi::lua_replace(l, 1);
                    ffi::lua_replace(l, 2);
                    ffi::lua_settop(l, 2);
                })
        };
        let (ok, value) = match result {
            Ok(r) => r,
            Err(e) => return Err(format!("ERR {}", sandbox::lua_error_text(&e))),
        };
        if ok {
            return Ok(value);
        }
        let name = self.run.name.borrow();
        if self.run.killed.get() {
            // Where the hook stopped it, as Redis (`@user_function:3` in a function).
            if let Value::Table(t) = &value
                && t.raw_set("err", KILLED_ERR).is_ok()
                && t.contains_key("line").unwrap_or(false)
            {
                return Err(sandbox::error_reply_text(&value, &name));
            }
            return Err(format!("{KILLED_ERR} script: {name}, on @user_script:1."));
        }
        Err(sandbox::error_reply_text(&value, &name))
    }
}

/// Scripts between two runs of the garbage collector, and the steps each run makes
/// (Redis's `LUA_GC_CYCLE_PERIOD`: `lua_gc(LUA_GCSTEP, 50)` every 50 scripts).
pub const GC_CYCLE_PERIOD: u32 = 50;

/// `lua_gc(LUA_GCSTEP, steps)`: the collector's work for `steps` KB of allocation.
fn gc_steps(lua: &Lua, steps: u32) {
    #[expect(
        unsafe_code,
        reason = "lua_gc with a step size, which mlua does not offer"
    )]
    // SAFETY: `exec_raw` runs the closure in protected mode on a frame with no arguments;
    // `lua_gc` pushes nothing and may raise only a memory error or a finalizer's error,
    // which the protected call catches (and which are ignored, as Redis ignores them).
    let _ = unsafe {
        lua.exec_raw::<()>((), |l| {
            mlua::ffi::lua_gc(l, mlua::ffi::LUA_GCSTEP, steps.try_into().unwrap_or(0));
        })
    };
}

/// Called from the instruction hook: marks the shard busy past the threshold, and stops
/// the script when SCRIPT KILL / FUNCTION KILL asked.
pub(crate) fn hook_check(run: &RunState) -> Result<(), ()> {
    if run.kind.get() == BUSY_NONE {
        return Ok(());
    }
    let shared_ref = run.shared.borrow();
    let Some(shared) = shared_ref.as_ref() else {
        return Ok(());
    };
    let slot = &shared.scripts.busy[run.shard.get()];
    if !run.busy.get() {
        let now = percore_net::sys::monotonic_ns();
        if now >= run.busy_after_ns.get() {
            run.busy.set(true);
            slot.wrote.store(run.wrote.get(), Ordering::Release);
            slot.state.store(run.kind.get(), Ordering::Release);
            shared.scripts.busy_count.fetch_add(1, Ordering::AcqRel);
            shared.warning(&format!(
                "Slow script detected: still in execution after {} milliseconds. You can try killing the script using the {} command. Script name is: {}.",
                (now - run.start_ns.get()) / 1_000_000,
                if run.kind.get() == BUSY_FUNCTION {
                    "FUNCTION KILL"
                } else {
                    "SCRIPT KILL"
                },
                run.name.borrow()
            ));
        }
    }
    if run.busy.get() && slot.kill.load(Ordering::Acquire) {
        if !run.killed.get() {
            shared.notice("Lua script killed by user with SCRIPT KILL.");
        }
        run.killed.set(true);
        return Err(());
    }
    if run.busy.get() {
        drop(shared_ref);
        // This shard's clients are served meanwhile; a shutdown (SHUTDOWN NOSAVE, here or
        // on another shard) stops the script whatever it wrote, as Redis exits under it.
        if busy::serve() {
            run.killed.set(true);
            return Err(());
        }
    }
    Ok(())
}
