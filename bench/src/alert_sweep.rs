//! Expiry-alert sweep over a large inventory.
//!
//! Boots certkeeper in process (fresh SQLite data directory, or a PostgreSQL database
//! given with `--database-url`) with a manual clock, fills `certificates` with `--rows`
//! rows whose expiry is spread evenly from 30 days ago to 400 days ahead, each issued 30
//! days ago (one set-based INSERT), adds one rule over every certificate with the default thresholds (30, 14, 7,
//! 1 days) and one webhook channel, then times:
//!
//! 1. the first sweep (every certificate already inside a window fires and is queued);
//! 2. a second sweep at the same time (nothing new: the steady state of a scheduled job);
//! 3. a sweep one day later (one day's threshold crossings).
//!
//! Nothing is delivered: the outbox is only filled.

use std::time::Instant;

use anyhow::{Context, Result};
use certkeeper::services::alerts::Alerts;
use certkeeper::services::alerts::channels::{NewChannel, prepare};
use certkeeper::services::pki::Actor;
use certkeeper::store::{Engine, RuleRecord, Selector, new_id};
use clap::Parser;
use time::Duration;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    name = "alert-sweep",
    about = "Time certkeeper's expiry sweep over a large inventory"
)]
struct Args {
    /// Inventory rows.
    #[arg(long, default_value_t = 1_000_000)]
    rows: i64,
    /// An empty PostgreSQL database to use instead of SQLite.
    #[arg(long)]
    database_url: Option<String>,
}

const DAY: i64 = 86_400;

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let (_dir, clock, booted) =
        certkeeper_bench::boot_in_process(args.database_url.as_deref(), "").await?;
    let pki = booted.pki.clone();
    let store = pki.store_for_tests();
    let now = pki.now().unix_timestamp();
    let ca = store.get_ca("intermediate").await?;

    let cols = "id, ca_id, profile_name, serial, subject, common_name, sans, issuer, not_before, not_after, fingerprint, status, der, created_at, created_by";
    let vals = "'b' || n, $1, 'default', 's' || n, 'CN=h' || n || '.example', 'h' || n || '.example', '[\"h' || n || '.example\"]', 'CN=bench', $2 - 30 * 86400, $2 - 30 * 86400 + ((n * 7919) % $3) * (430 * 86400 / $3), 'fp' || n, 'valid', $4, $2 - 30 * 86400, 'bench'";
    let sql = match store.engine() {
        Engine::Sqlite => format!(
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < $3)
             INSERT INTO certificates ({cols}) SELECT {vals} FROM s"
        ),
        Engine::Postgres => format!(
            "INSERT INTO certificates ({cols}) SELECT {vals} FROM generate_series(1, $3) AS s(n)"
        ),
    };
    let t = Instant::now();
    sqlx::query(&sql)
        .bind(&ca.id)
        .bind(now)
        .bind(args.rows)
        .bind(vec![0u8])
        .execute(store.pool())
        .await
        .context("filling the inventory")?;
    // The fill bypassed the store's writes: count it into the tallies the dashboard reads.
    store.recount_certificate_tallies().await?;
    // No ANALYZE: the server never runs it, so the planner works here without statistics
    // as it does there.
    println!(
        "engine {:?}: inserted {} rows in {:.1} s",
        store.engine(),
        args.rows,
        t.elapsed().as_secs_f64()
    );

    let ch_id = new_id();
    let ch: NewChannel = serde_json::from_value(serde_json::json!({
        "name": "bench", "kind": "webhook", "url": "http://127.0.0.1:9/none"
    }))?;
    let rec = prepare(&pki, &ch_id, ch, now).map_err(|e| anyhow::anyhow!("{e}"))?;
    let ev = Actor::system().event("alert_channel.create", "alert_channel");
    store.insert_channel(&rec, &ev, now).await?;
    let rule = RuleRecord {
        id: new_id(),
        name: "all".into(),
        selector: Selector::default(),
        thresholds: vec![30, 14, 7, 1],
        channels: vec![ch_id],
        events: vec![],
        daily_reminder: false,
        digest: false,
        enabled: true,
        created_at: now,
    };
    let ev = Actor::system().event("alert_rule.create", "alert_rule");
    store.insert_rule(&rule, &ev, now).await?;

    let alerts = Alerts::new(pki.clone());
    let expected_first = args.rows * 37 / 430;
    for (label, advance) in [
        ("first sweep (everything already inside a window)", 0),
        ("second sweep, same time (nothing new)", 0),
        ("sweep one day later (one day of crossings)", DAY),
    ] {
        clock.advance(Duration::seconds(advance));
        let t = Instant::now();
        let r = alerts.sweep().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "{label}: {} fired in {:.3} s",
            r.fired,
            t.elapsed().as_secs_f64()
        );
    }
    println!("(about {expected_first} rows expire within 30 days or expired in the last 7)");
    Ok(())
}
