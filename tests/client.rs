//! End-to-end tests with the `redis` crate, the way applications use percore.

mod common;

use common::Server;
use redis::{Commands, ErrorKind, RedisResult};

#[test]
fn set_get_del_typical_usage() {
    let s = Server::percore(&[]);
    let mut con = s.client();
    let () = con.set("user:1:name", "ada").unwrap();
    let name: String = con.get("user:1:name").unwrap();
    assert_eq!(name, "ada");
    let missing: Option<String> = con.get("user:2:name").unwrap();
    assert_eq!(missing, None);

    // Binary-safe values.
    let blob: Vec<u8> = (0..=255).collect();
    let () = con.set(b"blob", &blob).unwrap();
    let back: Vec<u8> = con.get(b"blob").unwrap();
    assert_eq!(back, blob);

    // Overwrite.
    let () = con.set("user:1:name", "grace").unwrap();
    let name: String = con.get("user:1:name").unwrap();
    assert_eq!(name, "grace");

    let removed: i64 = con.del(&["user:1:name", "blob", "never-set"]).unwrap();
    assert_eq!(removed, 2);
    let gone: Option<String> = con.get("user:1:name").unwrap();
    assert_eq!(gone, None);
    let removed: i64 = con.del("user:1:name").unwrap();
    assert_eq!(removed, 0);
}

#[test]
fn set_options_with_the_redis_crate() {
    let s = Server::percore(&[]);
    let mut con = s.client();
    // NX only sets a missing key.
    let first: Option<String> = redis::cmd("SET")
        .arg("lock")
        .arg("owner-a")
        .arg("NX")
        .query(&mut con)
        .unwrap();
    assert_eq!(first.as_deref(), Some("OK"));
    let second: Option<String> = redis::cmd("SET")
        .arg("lock")
        .arg("owner-b")
        .arg("NX")
        .query(&mut con)
        .unwrap();
    assert_eq!(second, None);
    let owner: String = con.get("lock").unwrap();
    assert_eq!(owner, "owner-a");
    // XX only replaces an existing key; GET returns the old value.
    let old: Option<String> = redis::cmd("SET")
        .arg("lock")
        .arg("owner-c")
        .arg("XX")
        .arg("GET")
        .query(&mut con)
        .unwrap();
    assert_eq!(old.as_deref(), Some("owner-a"));
    let absent: Option<String> = redis::cmd("SET")
        .arg("nolock")
        .arg("x")
        .arg("XX")
        .query(&mut con)
        .unwrap();
    assert_eq!(absent, None);
    let exists: Option<String> = con.get("nolock").unwrap();
    assert_eq!(exists, None);
    // A short expiry really expires.
    let () = redis::cmd("SET")
        .arg("short")
        .arg("v")
        .arg("PX")
        .arg(50)
        .query(&mut con)
        .unwrap();
    let now: Option<String> = con.get("short").unwrap();
    assert_eq!(now.as_deref(), Some("v"));
    std::thread::sleep(std::time::Duration::from_millis(120));
    let later: Option<String> = con.get("short").unwrap();
    assert_eq!(later, None);
}

#[test]
fn incr_counters() {
    let s = Server::percore(&[]);
    let mut con = s.client();
    for want in 1..=100i64 {
        let got: i64 = redis::cmd("INCR").arg("hits").query(&mut con).unwrap();
        assert_eq!(got, want);
    }
    let total: i64 = con.get("hits").unwrap();
    assert_eq!(total, 100);

    let () = con.set("n", "-5").unwrap();
    let n: i64 = redis::cmd("INCR").arg("n").query(&mut con).unwrap();
    assert_eq!(n, -4);

    let () = con.set("text", "abc").unwrap();
    let e: RedisResult<i64> = redis::cmd("INCR").arg("text").query(&mut con);
    let e = e.unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Server(redis::ServerErrorKind::ResponseError)
    );
    assert!(
        e.to_string()
            .contains("value is not an integer or out of range"),
        "{e}"
    );
    let () = con.set("max", i64::MAX).unwrap();
    let e: RedisResult<i64> = redis::cmd("INCR").arg("max").query(&mut con);
    assert!(
        e.unwrap_err()
            .to_string()
            .contains("increment or decrement would overflow"),
    );
}

#[test]
fn mset_mget() {
    let s = Server::percore(&[]);
    let mut con = s.client();
    let pairs: Vec<(String, String)> = (0..50)
        .map(|i| (format!("m{i}"), format!("val{i}")))
        .collect();
    let () = con.mset(&pairs).unwrap();
    let keys: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    let vals: Vec<String> = con.mget(&keys).unwrap();
    let want: Vec<String> = (0..50).map(|i| format!("val{i}")).collect();
    assert_eq!(vals, want);

    let mixed: Vec<Option<String>> = con.mget(&["m1", "nope", "m2", "m1"]).unwrap();
    assert_eq!(
        mixed,
        vec![
            Some("val1".to_owned()),
            None,
            Some("val2".to_owned()),
            Some("val1".to_owned())
        ]
    );
    // The last value of a repeated key wins.
    let () = con.mset(&[("dup", "a"), ("dup", "b")]).unwrap();
    let dup: String = con.get("dup").unwrap();
    assert_eq!(dup, "b");
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(n, 51);
}

#[test]
fn pipelines_with_the_redis_crate() {
    let s = Server::percore(&["--threads", "2"]);
    let mut con = s.client();
    let mut p = redis::pipe();
    for i in 0..200 {
        p.set(format!("p{i}"), i).ignore();
    }
    for i in 0..200 {
        p.get(format!("p{i}"));
    }
    let got: Vec<i64> = p.query(&mut con).unwrap();
    assert_eq!(got, (0..200).collect::<Vec<i64>>());
}

#[test]
fn select_isolates_databases() {
    let s = Server::percore(&[]);
    let mut con0 = s.client();
    let mut con3 = s.client();
    let () = redis::cmd("SELECT").arg(3).query(&mut con3).unwrap();
    let () = con0.set("shared-name", "in-db0").unwrap();
    let () = con3.set("shared-name", "in-db3").unwrap();
    let in0: String = con0.get("shared-name").unwrap();
    let in3: String = con3.get("shared-name").unwrap();
    assert_eq!(in0, "in-db0");
    assert_eq!(in3, "in-db3");

    let () = con3.set("only-db3", "x").unwrap();
    let none: Option<String> = con0.get("only-db3").unwrap();
    assert_eq!(none, None);
    let size0: i64 = redis::cmd("DBSIZE").query(&mut con0).unwrap();
    let size3: i64 = redis::cmd("DBSIZE").query(&mut con3).unwrap();
    assert_eq!((size0, size3), (1, 2));

    // DEL in one db leaves the other alone.
    let deleted: i64 = con3.del("shared-name").unwrap();
    assert_eq!(deleted, 1);
    let still: String = con0.get("shared-name").unwrap();
    assert_eq!(still, "in-db0");

    // Switching back on the same connection.
    let () = redis::cmd("SELECT").arg(0).query(&mut con3).unwrap();
    let seen: String = con3.get("shared-name").unwrap();
    assert_eq!(seen, "in-db0");

    // Out of range and non-numeric indexes are errors; the connection keeps its db.
    let e: RedisResult<()> = redis::cmd("SELECT").arg(16).query(&mut con0);
    assert!(
        e.unwrap_err()
            .to_string()
            .contains("DB index is out of range")
    );
    let e: RedisResult<()> = redis::cmd("SELECT").arg("x").query(&mut con0);
    assert!(
        e.unwrap_err()
            .to_string()
            .contains("value is not an integer or out of range")
    );
    let seen: String = con0.get("shared-name").unwrap();
    assert_eq!(seen, "in-db0");

    // A connection opened with a db in its URL lands there.
    let url = format!("redis://127.0.0.1:{}/3", s.port());
    let mut con_url = redis::Client::open(url).unwrap().get_connection().unwrap();
    let v: String = con_url.get("only-db3").unwrap();
    assert_eq!(v, "x");

    // FLUSHALL empties every db.
    let () = redis::cmd("FLUSHALL").query(&mut con0).unwrap();
    let size3: i64 = redis::cmd("DBSIZE").query(&mut con_url).unwrap();
    assert_eq!(size3, 0);
}

#[test]
fn expire_and_ttl() {
    let s = Server::percore(&["--threads", "2"]);
    let mut con = s.client();
    let () = con.set("session", "token").unwrap();
    let ttl: i64 = con.ttl("session").unwrap();
    assert_eq!(ttl, -1);
    let missing: i64 = con.ttl("no-session").unwrap();
    assert_eq!(missing, -2);

    let set: bool = con.expire("session", 100).unwrap();
    assert!(set);
    let ttl: i64 = con.ttl("session").unwrap();
    assert!((99..=100).contains(&ttl), "ttl {ttl}");
    let pttl: i64 = con.pttl("session").unwrap();
    assert!((98_000..=100_000).contains(&pttl), "pttl {pttl}");
    let set: bool = con.expire("no-session", 100).unwrap();
    assert!(!set);

    // Overwriting with SET drops the TTL; PERSIST removes it.
    let () = con.set_ex("session", "token2", 50).unwrap();
    let ttl: i64 = con.ttl("session").unwrap();
    assert!((49..=50).contains(&ttl), "ttl {ttl}");
    let persisted: bool = con.persist("session").unwrap();
    assert!(persisted);
    let ttl: i64 = con.ttl("session").unwrap();
    assert_eq!(ttl, -1);

    // A key really goes away once its TTL passes, for GET, EXISTS and DBSIZE alike.
    let set: bool = con.pexpire("session", 80).unwrap();
    assert!(set);
    let still: Option<String> = con.get("session").unwrap();
    assert_eq!(still.as_deref(), Some("token2"));
    std::thread::sleep(std::time::Duration::from_millis(200));
    let gone: Option<String> = con.get("session").unwrap();
    assert_eq!(gone, None);
    let exists: bool = con.exists("session").unwrap();
    assert!(!exists);
    let ttl: i64 = con.ttl("session").unwrap();
    assert_eq!(ttl, -2);

    // Many keys expiring on both shards: active expiry empties the keyspace without reads.
    let mut p = redis::pipe();
    for i in 0..200 {
        p.cmd("SET")
            .arg(format!("tmp{i}"))
            .arg(i)
            .arg("PX")
            .arg(50)
            .ignore();
    }
    let () = p.query(&mut con).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
        if n == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{n} expired keys still counted after 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // EXPIRE with a non-positive TTL deletes at once.
    let () = con.set("k", "v").unwrap();
    let deleted: bool = con.expire("k", 0).unwrap();
    assert!(deleted);
    let exists: bool = con.exists("k").unwrap();
    assert!(!exists);
}
