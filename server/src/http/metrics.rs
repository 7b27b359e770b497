//! `GET /metrics`: Prometheus text format, on the server's one port.
//!
//! A scrape renders what this process recorded (`crate::metrics`), then
//! what it reads at that moment: runs by agent and status and the queue
//! (two aggregate statements, see `store::stats`), the connected workers
//! and their slots (the engine's memory). Nothing is computed between
//! scrapes. With a client token configured the path takes it as a bearer
//! token (401 otherwise); without one it is open, like the API.

use std::sync::Arc;

use axum::{
    Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::Utc;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use metrics::{Unit, describe_gauge, gauge};
use metrics_exporter_prometheus::PrometheusBuilder;
use sea_orm::Iterable;

use crate::{
    auth::{Tokens, constant_time_eq},
    dispatch::{Engine, hub::SlotTotals},
    entity::enums::ExecutionStatus,
    store::{execution_state::status_name, stats::RunFigures},
};

/// Where the metrics are served.
pub const PATH: &str = "/metrics";

/// The content type of Prometheus' text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone)]
struct Scrape {
    engine: Engine,
    client_token: Option<Arc<str>>,
}

/// The `/metrics` route over `engine`, behind the client token of `tokens`.
pub fn router(engine: Engine, tokens: &Tokens) -> Router {
    // Installed now, so that what happens before the first scrape counts.
    crate::metrics::handle();
    Router::new().route(PATH, get(scrape)).with_state(Scrape {
        engine,
        client_token: tokens.client.as_deref().map(Arc::from),
    })
}

async fn scrape(State(scrape): State<Scrape>, headers: HeaderMap) -> Response {
    if let Some(expected) = &scrape.client_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .map(|value| value.to_str().unwrap_or("\u{fffd}"))
            .map(|value| value.strip_prefix("Bearer ").map(str::trim));
        match presented {
            Some(Some(token)) if constant_time_eq(token, expected) => {}
            None => {
                return unauthorized(
                    "/metrics needs `Authorization: Bearer <token>` with the client token",
                );
            }
            Some(None) => return unauthorized("the Authorization header must be `Bearer <token>`"),
            Some(Some(_)) => {
                return unauthorized("the token is wrong: /metrics takes the client token");
            }
        }
    }
    let figures = match scrape.engine.store.run_figures().await {
        Ok(figures) => Some(figures),
        Err(err) => {
            // What this process knows is still worth serving.
            tracing::warn!(error = %err, "reading run figures for /metrics");
            None
        }
    };
    let mut body = crate::metrics::handle().render();
    body.push_str(&read_now(
        figures.as_ref(),
        scrape.engine.workers.slot_totals(),
    ));
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

/// The figures read at this scrape, rendered by a recorder of their own
/// made for it: a series that is gone (a renamed agent) is gone from the
/// next scrape too, instead of staying at its last value.
fn read_now(figures: Option<&RunFigures>, slots: SlotTotals) -> String {
    let recorder = PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&recorder, || {
        describe_gauge!(
            "amon_workers_connected",
            Unit::Count,
            "Workers with an open stream to this server."
        );
        describe_gauge!(
            "amon_worker_slots",
            Unit::Count,
            "Slots the workers connected to this server registered."
        );
        describe_gauge!(
            "amon_worker_slots_free",
            Unit::Count,
            "Free slots granted by the workers connected to this server that take work (not \
             draining)."
        );
        gauge!("amon_workers_connected").set(slots.workers as f64);
        gauge!("amon_worker_slots").set(slots.slots as f64);
        gauge!("amon_worker_slots_free").set(slots.free as f64);
        let Some(figures) = figures else {
            return;
        };
        describe_gauge!(
            "amon_runs",
            Unit::Count,
            "Runs (executions) in the database by agent and status."
        );
        describe_gauge!(
            "amon_queue_depth",
            Unit::Count,
            "Queued runs by agent (including those waiting for an approval or a dependency)."
        );
        describe_gauge!(
            "amon_queue_oldest_age_seconds",
            Unit::Seconds,
            "Age of the oldest queued run by agent, since it was created (0: none queued)."
        );
        let now = Utc::now();
        for (id, slug) in &figures.agents {
            for status in ExecutionStatus::iter() {
                let runs = figures.by_status.get(&(*id, status)).copied().unwrap_or(0);
                gauge!("amon_runs", "agent" => slug.clone(), "status" => status_name(status))
                    .set(runs as f64);
            }
            let (depth, age) = figures.queued.get(id).map_or((0, 0.0), |(depth, oldest)| {
                let age = (now - oldest.to_utc()).num_milliseconds().max(0) as f64 / 1000.0;
                (*depth, age)
            });
            gauge!("amon_queue_depth", "agent" => slug.clone()).set(depth as f64);
            gauge!("amon_queue_oldest_age_seconds", "agent" => slug.clone()).set(age);
        }
    });
    recorder.handle().render()
}

fn unauthorized(message: &str) -> Response {
    let mut response = (StatusCode::UNAUTHORIZED, format!("{message}\n")).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"agent-monitor\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_now_render_as_prometheus_text() {
        let agent = uuid::Uuid::new_v4();
        let mut figures = RunFigures {
            agents: vec![(agent, "echo".into())],
            ..RunFigures::default()
        };
        figures
            .by_status
            .insert((agent, ExecutionStatus::Succeeded), 3);
        figures.queued.insert(
            agent,
            (2, (Utc::now() - chrono::TimeDelta::seconds(90)).into()),
        );
        let text = read_now(
            Some(&figures),
            SlotTotals {
                workers: 1,
                slots: 4,
                free: 3,
            },
        );
        assert!(text.contains("# TYPE amon_runs gauge"), "{text}");
        assert!(
            text.contains("amon_runs{agent=\"echo\",status=\"succeeded\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("amon_runs{agent=\"echo\",status=\"failed\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("amon_queue_depth{agent=\"echo\"} 2"),
            "{text}"
        );
        assert!(text.contains("amon_worker_slots_free 3"), "{text}");
        let age = text
            .lines()
            .find_map(|l| l.strip_prefix("amon_queue_oldest_age_seconds{agent=\"echo\"} "))
            .and_then(|v| v.parse::<f64>().ok())
            .expect("the oldest queued age");
        assert!((89.0..120.0).contains(&age), "{age}");
    }

    #[test]
    fn without_the_database_the_engine_figures_still_render() {
        let text = read_now(None, SlotTotals::default());
        assert!(text.contains("amon_workers_connected 0"), "{text}");
        assert!(!text.contains("amon_runs"), "{text}");
    }
}
