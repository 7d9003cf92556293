//! Photo benchmarks (`cargo bench --bench photos`), figures in BENCHMARKS.md:
//! - thumbnail + preview of a 12-megapixel JPEG, ours and `vipsthumbnail` (Debian
//!   libvips-tools) side by side, both on one core;
//! - 20 concurrent 20 MB tus uploads to the real server binary: its peak memory (VmHWM);
//! - peak memory (VmHWM) of processing bomb-like images (a 10000 × 10000 RGBA PNG, lossless
//!   9000 × 9000 WebPs) with the default limits, each in a fresh process, against the
//!   configured decode limit.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use foodcheck::photo::media::{renditions, Limits};

// The server's allocator, so that the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../src/photo/bombs.rs"]
mod bombs;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A photo-like 12 MP JPEG: smooth shading plus sensor-like noise (compresses like a photo,
/// not like a flat test card).
fn photo_12mp(seed: u32) -> Vec<u8> {
    let (w, h) = (4000u32, 3000u32);
    let mut state = seed.wrapping_mul(2654435761).max(1);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state % 24) as i32 - 12;
        let base = |v: u32, m: u32| ((v * 255 / m) as i32 + n).clamp(0, 255) as u8;
        image::Rgb([base(x, w), base(y, h), base((x + y) / 2, (w + h) / 2)])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .unwrap();
    out
}

fn renditions_bench() -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let images: Vec<Vec<u8>> = (0..6).map(photo_12mp).collect();
    for (i, img) in images.iter().enumerate() {
        std::fs::write(dir.path().join(format!("p{i}.jpg")), img)?;
    }
    // Ours: one thread.
    let limits = Limits::default();
    let start = Instant::now();
    for img in &images {
        std::hint::black_box(renditions(img, &limits).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    let ours = start.elapsed().as_secs_f64() / images.len() as f64;
    // vipsthumbnail, pinned to one core, one thread, 1600 and 320 from the original.
    let files: Vec<String> = (0..images.len())
        .map(|i| dir.path().join(format!("p{i}.jpg")).display().to_string())
        .collect();
    let vips = |size: &str| -> anyhow::Result<f64> {
        let start = Instant::now();
        let status = Command::new("taskset")
            .args([
                "-c",
                "0",
                "vipsthumbnail",
                "-s",
                size,
                "-o",
                "%s_tn.jpg[Q=80,strip]",
            ])
            .args(&files)
            .env("VIPS_CONCURRENCY", "1")
            .status()?;
        anyhow::ensure!(status.success(), "vipsthumbnail failed");
        Ok(start.elapsed().as_secs_f64() / files.len() as f64)
    };
    let vips_s = match (vips("1600"), vips("320")) {
        (Ok(a), Ok(b)) => Some(a + b),
        _ => None,
    };
    Ok(match vips_s {
        Some(v) => format!(
            "| thumbnail (320) + preview (1600) of a 12 MP JPEG, one core | ours {:.0} ms ({:.2}/s) | vipsthumbnail 1600 + 320 {:.0} ms ({:.2}/s) | ours ÷ vips rate **{:.2}** (target ≥ 0.5) |",
            ours * 1000.0, 1.0 / ours, v * 1000.0, 1.0 / v, v / ours
        ),
        None => format!("| thumbnail + preview of a 12 MP JPEG, one core | ours {:.0} ms | vipsthumbnail not installed (apt-get install libvips-tools) | - |", ours * 1000.0),
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn vm_hwm_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmHWM:")
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0)
}

async fn memory_bench() -> anyhow::Result<String> {
    let bin = env!("CARGO_BIN_EXE_foodcheck");
    let dir = tempfile::tempdir()?;
    let mut add = Command::new(bin)
        .args(["--data-dir"])
        .arg(dir.path())
        .args([
            "user",
            "add",
            "--username",
            "admin",
            "--role",
            "admin",
            "--name",
            "A",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    add.stdin.take().unwrap().write_all(b"admin-password-1\n")?;
    anyhow::ensure!(add.wait()?.success());
    let port = free_port();
    let mut server = Command::new(bin)
        .args(["--data-dir"])
        .arg(dir.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("FOODCHECK_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client.get(format!("{base}/readyz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let login = |u: &'static str, p: &'static str| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let v: Value = client
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"username": u, "password": p, "device_id": "bench"}))
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(v["access_token"].as_str().unwrap_or_default().to_string())
        }
    };
    let admin = login("admin", "admin-password-1").await?;
    let post = |path: String, token: String, body: Value| {
        let client = client.clone();
        let base = base.clone();
        async move {
            anyhow::Ok(
                client
                    .post(format!("{base}{path}"))
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await?
                    .json::<Value>()
                    .await?,
            )
        }
    };
    let mut ids = Vec::new();
    for (u, b) in [("mem-a", "B1"), ("mem-b", "B2")] {
        let v = post("/api/v1/users".into(), admin.clone(), json!({"username": u, "password": "inspector-pw-1", "role": "inspector", "name": u, "badge_no": b})).await?;
        ids.push(v["id"].as_str().unwrap_or_default().to_string());
    }
    post("/api/v1/establishments".into(), admin.clone(), json!({"sign_name": "店", "licensed_name": "公司", "license_no": "JY21201150000001", "category": "small_restaurant", "address": "地址", "town": "周良街道", "risk_grade": "C"})).await?;
    let plan = post("/api/v1/plans".into(), admin.clone(), json!({"name": "m", "round_title": "m", "theme": "m", "period_start": "2024-03-01", "period_end": "2024-03-31", "due_date": "2099-01-01", "template_id": "00000000-0000-4000-8000-000000002016", "template_version": 1, "quotas": {"explicit": {"C": 1}}, "inspector_ids": ids, "team_size": 2})).await?;
    post(
        format!(
            "/api/v1/plans/{}/draw",
            plan["id"].as_str().unwrap_or_default()
        ),
        admin.clone(),
        json!({"seed": "m"}),
    )
    .await?;
    let token = login("mem-a", "inspector-pw-1").await?;
    let pull: Value = client
        .get(format!(
            "{base}/api/v1/sync?last_pulled_at=null&schema_version=2"
        ))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let task = &pull["changes"]["tasks"]["created"][0];
    let inspection = uuid::Uuid::new_v4().to_string();
    // 20 distinct 20 MB files (JPEG signature, then noise): hashed here, streamed below.
    let size = 20 * 1024 * 1024;
    let files: Vec<(String, Vec<u8>)> = (0..20u8)
        .map(|k| {
            let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0];
            v.extend((0..size - 4).map(|i: usize| (i as u8).wrapping_mul(131).wrapping_add(k)));
            (uuid::Uuid::new_v4().to_string(), v)
        })
        .collect();
    let photos: Vec<Value> = files.iter().map(|(id, b)| json!({"id": id, "inspection_id": inspection, "sha256": hex::encode(Sha256::digest(b)), "byte_size": b.len(), "taken_at": 1_710_000_000_000i64})).collect();
    let r = post(format!("/api/v1/sync?last_pulled_at={}", pull["timestamp"]), token.clone(), json!({"changes": {
        "inspections": {"created": [{"id": inspection, "task_id": task["id"], "establishment_id": task["establishment_id"], "started_at": 1_710_000_000_000i64, "team": "[]", "representative_signed": false, "representative_refused": false, "submitted": false}]},
        "photos": {"created": photos}}})).await?;
    anyhow::ensure!(r == json!({}), "photo records refused: {r}");
    let before = vm_hwm_kib(server.id());
    let start = Instant::now();
    let uploads = files.into_iter().map(|(id, bytes)| {
        let client = client.clone();
        let base = base.clone();
        let token = token.clone();
        async move {
            let b64 = |s: &str| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(s)
            };
            let res = client
                .post(format!("{base}/api/v1/uploads"))
                .bearer_auth(&token)
                .header("tus-resumable", "1.0.0")
                .header("upload-length", bytes.len().to_string())
                .header(
                    "upload-metadata",
                    format!(
                        "photo_id {},sha256 {}",
                        b64(&id),
                        b64(&hex::encode(Sha256::digest(&bytes)))
                    ),
                )
                .send()
                .await?;
            let location = res
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let res = client
                .patch(format!("{base}{location}"))
                .bearer_auth(&token)
                .header("tus-resumable", "1.0.0")
                .header("upload-offset", "0")
                .header("content-type", "application/offset+octet-stream")
                .body(bytes)
                .send()
                .await?;
            anyhow::ensure!(res.status() == 204, "upload failed: {}", res.status());
            anyhow::Ok(())
        }
    });
    let results = futures::future::join_all(uploads).await;
    let wall = start.elapsed();
    let failed = results.iter().filter(|r| r.is_err()).count();
    let after_uploads = vm_hwm_kib(server.id());
    // Let the photo jobs run too (they decode these files: a failed decode is expected here).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let peak = vm_hwm_kib(server.id());
    let _ = server.kill();
    let _ = server.wait();
    Ok(format!(
        "| 20 concurrent 20 MB tus uploads to the release server ({:.1} s, {failed} failed) | server peak RSS (VmHWM) **{:.0} MB** when the uploads finish, {:.0} MB after the 20 processing jobs (before the uploads {:.0} MB) | target < 200 MB | ratio {:.2} |",
        wall.as_secs_f64(), after_uploads as f64 / 1024.0, peak as f64 / 1024.0, before as f64 / 1024.0, after_uploads as f64 / 1024.0 / 200.0
    ))
}

/// The bomb-like inputs of the processing-memory benchmark.
const BOMBS: &[&str] = &[
    "png-rgba-10000",
    "png-rgba16-8000",
    "webp-lossless-alpha-9000",
    "webp-lossless-9000",
    "webp-lossless-8000",
    "jpeg-12mp",
];

fn bomb(name: &str) -> (&'static str, Vec<u8>) {
    match name {
        "png-rgba-10000" => (
            "10000 × 10000 RGBA PNG",
            bombs::png_rgba_zeros(10_000, 10_000, 8),
        ),
        "png-rgba16-8000" => (
            "8000 × 8000 16-bit RGBA PNG",
            bombs::png_rgba_zeros(8_000, 8_000, 16),
        ),
        "webp-lossless-alpha-9000" => (
            "9000 × 9000 lossless WebP, alpha",
            bombs::webp_lossless_flat(9_000, 9_000, true),
        ),
        "webp-lossless-9000" => (
            "9000 × 9000 lossless WebP, no alpha",
            bombs::webp_lossless_flat(9_000, 9_000, false),
        ),
        "webp-lossless-8000" => (
            "8000 × 8000 lossless WebP, no alpha",
            bombs::webp_lossless_flat(8_000, 8_000, false),
        ),
        _ => ("4000 × 3000 photo-like JPEG", photo_12mp(7)),
    }
}

/// In a child process: builds one input, processes it with the default limits, prints
/// `VmHWM before (KiB) <tab> VmHWM after (KiB) <tab> outcome`.
fn processing_memory_child(name: &str) {
    let (_, bytes) = bomb(name);
    let pid = std::process::id();
    let before = vm_hwm_kib(pid);
    let outcome = match renditions(&bytes, &Limits::default()) {
        Ok(r) => format!("processed ({} × {})", r.width, r.height),
        Err(e) => format!("refused: {e}"),
    };
    println!("{before}\t{}\t{outcome}", vm_hwm_kib(pid));
}

/// Prints one table row per input as soon as it is measured.
fn processing_memory_bench() -> anyhow::Result<()> {
    let limit = Limits::default().max_alloc_bytes as f64 / 1024.0 / 1024.0;
    let exe = std::env::current_exe()?;
    for name in BOMBS {
        let (label, bytes) = bomb(name);
        let out = Command::new(&exe)
            .env("PHOTO_BENCH_CHILD", name)
            .stderr(Stdio::inherit())
            .output()?;
        anyhow::ensure!(out.status.success(), "{name}: child failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut fields = text.trim().splitn(3, '\t');
        let mut kib = || -> f64 {
            fields
                .next()
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let (before, peak) = (kib() / 1024.0, kib() / 1024.0);
        let outcome = fields.next().unwrap_or("?").to_string();
        println!(
            "| {label} ({:.0} KB) | {outcome} | **{peak:.0} MiB** ({before:.0} MiB before) | {:.0} MiB | {limit:.0} MiB | {:.2} |",
            bytes.len() as f64 / 1000.0,
            peak - before,
            (peak - before) / limit,
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if let Ok(name) = std::env::var("PHOTO_BENCH_CHILD") {
        processing_memory_child(&name);
        return Ok(());
    }
    // `cargo bench --bench photos -- memory` runs the processing-memory part only.
    let only_memory = std::env::args().any(|a| a == "memory");
    println!("| input | outcome | peak RSS (VmHWM) | processing's share (peak − before) | decode limit | share ÷ limit |");
    println!("|---|---|---|---|---|---|");
    processing_memory_bench()?;
    if only_memory {
        return Ok(());
    }
    println!("{}", renditions_bench()?);
    println!("{}", memory_bench().await?);
    Ok(())
}
