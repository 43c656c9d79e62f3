//! RESP codec micro-benchmarks: request parsing and reply encoding.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use percore_net::resp::{ParseLimits, Parsed, Protocol, ReplyWriter, Request, parse_request};

const PIPELINE_DEPTH: usize = 16;

fn set_pipeline() -> Vec<u8> {
    let mut buf = Vec::new();
    for i in 0..PIPELINE_DEPTH {
        let key = format!("key:{i:012}");
        let value = format!("value-{i:010}");
        assert_eq!(value.len(), 16);
        buf.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
                key.len(),
                value.len()
            )
            .as_bytes(),
        );
    }
    buf
}

/// Parses every request in `buf`, returning the total argument count.
fn parse_all(buf: &[u8], limits: &ParseLimits, req: &mut Request) -> usize {
    let mut pos = 0;
    let mut args = 0;
    while pos < buf.len() {
        match parse_request(&buf[pos..], limits, req) {
            Ok(Parsed::Complete { consumed }) => {
                args += req.len();
                pos += consumed;
            }
            other => panic!("{other:?}"),
        }
    }
    args
}

fn parse(c: &mut Criterion) {
    let limits = ParseLimits::default();
    let mut req = Request::new();
    let mut group = c.benchmark_group("resp_parse");

    let pipeline = set_pipeline();
    group.throughput(Throughput::Elements(PIPELINE_DEPTH as u64));
    group.bench_function("set_pipeline_16", |b| {
        b.iter(|| parse_all(black_box(&pipeline), &limits, &mut req));
    });

    let get = b"*2\r\n$3\r\nGET\r\n$16\r\nkey:000000000001\r\n";
    group.throughput(Throughput::Elements(1));
    group.bench_function("get", |b| {
        b.iter(|| parse_all(black_box(get), &limits, &mut req));
    });

    let inline = b"SET key:000000000001 value-0000000001\r\n";
    group.bench_function("set_inline", |b| {
        b.iter(|| parse_all(black_box(inline), &limits, &mut req));
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut out = Vec::with_capacity(64 * 1024);
    let mut group = c.benchmark_group("resp_encode");
    group.throughput(Throughput::Elements(1));
    let value = [b'v'; 16];
    group.bench_function("bulk_16", |b| {
        b.iter(|| {
            out.clear();
            ReplyWriter::new(&mut out, Protocol::Resp2).bulk(black_box(&value));
            out.len()
        });
    });
    group.bench_function("int_small", |b| {
        b.iter(|| {
            out.clear();
            ReplyWriter::new(&mut out, Protocol::Resp2).int(black_box(42));
            out.len()
        });
    });
    group.bench_function("int_large", |b| {
        b.iter(|| {
            out.clear();
            ReplyWriter::new(&mut out, Protocol::Resp2).int(black_box(1_234_567_890_123));
            out.len()
        });
    });
    group.bench_function("simple_ok", |b| {
        b.iter(|| {
            out.clear();
            ReplyWriter::new(&mut out, Protocol::Resp2).ok();
            out.len()
        });
    });
    group.bench_function("simple_pong", |b| {
        b.iter(|| {
            out.clear();
            ReplyWriter::new(&mut out, Protocol::Resp2).simple(black_box("PONG"));
            out.len()
        });
    });
    group.bench_function("double", |b| {
        b.iter(|| {
            out.clear();
            ReplyWriter::new(&mut out, Protocol::Resp3).double(black_box(0.1));
            out.len()
        });
    });
    group.finish();
}

criterion_group!(benches, parse, encode);
criterion_main!(benches);
