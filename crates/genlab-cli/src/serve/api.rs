//! The studio's routes: the page, and the JSON + PNG API (README, "The studio", lists them).
//! Every handler validates its input into bounded values first, then runs the model work on
//! the studio's pool.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use genlab::image_io::png_bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::latent::{self, decode_upload};
use super::studio::{RunEntry, Studio};

/// The largest upload (an image file), in bytes.
pub const MAX_UPLOAD: usize = 20 << 20;
/// The largest width or height of an uploaded image.
pub const MAX_SIDE: u32 = 8000;
/// The largest photo the super-resolution view upscales, in pixels (the output is up to 16
/// times larger, and is sent back as PNG).
pub const MAX_SR_PIXELS: u64 = 2_000_000;

const PAGE: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/style.css");

pub(super) type S = State<Arc<Studio>>;
pub(super) type Id = Result<Path<usize>, PathRejection>;

pub fn router(s: Arc<Studio>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { page(PAGE, "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { page(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/style.css",
            get(|| async { page(STYLE, "text/css; charset=utf-8") }),
        )
        .route("/api/runs", get(runs))
        .route("/api/runs/{id}/metrics", get(metrics))
        .route("/api/runs/{id}/epochs", get(epochs))
        .route("/api/runs/{id}/epochs/{epoch}/{file}", get(epoch_image))
        .route("/api/runs/{id}/map", get(map))
        .route("/api/runs/{id}/decode", post(latent::decode))
        .route("/api/runs/{id}/sample", post(latent::sample))
        .route("/api/runs/{id}/interpolate", post(latent::interpolate))
        .route("/api/runs/{id}/encode", post(latent::encode))
        .route("/api/runs/{id}/invert", post(latent::invert_image))
        .route("/api/runs/{id}/neighbours", post(latent::neighbours))
        .route("/api/sr", get(sr_models))
        .route("/api/sr/{id}/upscale", post(upscale))
        .fallback(|| async { ApiError::not_found("no such page or endpoint") })
        .layer(DefaultBodyLimit::max(MAX_UPLOAD))
        .with_state(s)
}

/// A compiled-in file of the page, with headers that keep it to its own origin.
fn page(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data: blob:; style-src 'self'",
            ),
        ],
        body,
    )
        .into_response()
}

pub(super) fn png(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "image/png")], bytes).into_response()
}

pub(super) fn data_url(png: &[u8]) -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

macro_rules! rejection {
    ($($t:ty),*) => {$(
        impl From<$t> for ApiError {
            fn from(r: $t) -> Self {
                let mut e = ApiError::bad(r.body_text());
                e.status = r.status();
                e
            }
        }
    )*};
}
rejection!(JsonRejection, PathRejection, QueryRejection, BytesRejection);

pub(super) fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

/// Every run: what the runs table shows.
async fn runs(State(s): S) -> Json<Value> {
    let list: Vec<Value> = s
        .runs
        .iter()
        .enumerate()
        .map(|(id, e)| {
            let c = &e.run.config;
            let records = read_metrics(e).unwrap_or_default();
            json!({
                "id": id,
                "name": e.name,
                "family": c.model.kind(),
                "dataset": c.train.dataset,
                "image": c.model.image(),
                "classes": c.model.classes(),
                "can_encode": c.model.can_encode(),
                "can_generate": c.model.can_generate(),
                "params": e.params,
                "epochs_planned": c.train.epochs,
                "epochs_done": records.len(),
                "last": records.last(),
            })
        })
        .collect();
    Json(json!({ "runs": list }))
}

/// `metrics.jsonl` read now (so a training in another process shows live), each record
/// flattened to `{"test.loss": ...}`. A last line being written is left out.
fn read_metrics(e: &RunEntry) -> Result<Vec<Value>, ApiError> {
    let records: Vec<Value> = genlab::train::read_records_live(&e.run.dir).map_err(internal)?;
    Ok(records
        .iter()
        .map(|v| {
            let mut flat = serde_json::Map::new();
            flatten("", v, &mut flat);
            Value::Object(flat)
        })
        .collect())
}

fn flatten(prefix: &str, v: &Value, out: &mut serde_json::Map<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Number(_) => {
            out.insert(prefix.to_string(), v.clone());
        }
        _ => {}
    }
}

async fn metrics(State(s): S, id: Id) -> Result<Json<Value>, ApiError> {
    let e = s.run(id?.0)?;
    Ok(Json(json!({
        "records": read_metrics(e)?,
        "epochs_planned": e.run.config.train.epochs,
    })))
}

/// The epochs that have a sample grid or reconstructions PNG.
async fn epochs(State(s): S, id: Id) -> Result<Json<Value>, ApiError> {
    let e = s.run(id?.0)?;
    let list = |sub: &str| -> Vec<usize> {
        let mut v: Vec<usize> = std::fs::read_dir(e.run.dir.dir.join(sub))
            .into_iter()
            .flatten()
            .filter_map(|f| {
                let name = f.ok()?.file_name().into_string().ok()?;
                name.strip_prefix("epoch-")?
                    .strip_suffix(".png")?
                    .parse()
                    .ok()
            })
            .collect();
        v.sort_unstable();
        v
    };
    Ok(Json(json!({
        "samples": list("samples"),
        "reconstructions": list("reconstructions"),
    })))
}

/// `samples.png` or `reconstructions.png` of one epoch: a file of the run, named by number.
async fn epoch_image(
    State(s): S,
    p: Result<Path<(usize, usize, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path((id, epoch, file)) = p?;
    let e = s.run(id)?;
    let f = match file.as_str() {
        "samples.png" => e.run.dir.samples(epoch),
        "reconstructions.png" => e.run.dir.reconstructions(epoch),
        _ => {
            return Err(ApiError::not_found(
                "expected samples.png or reconstructions.png",
            ));
        }
    };
    if !f.is_file() {
        return Err(ApiError::not_found(format!("no {file} for epoch {epoch}")));
    }
    let bytes = genlab::fsutil::read_capped(&f, MAX_UPLOAD as u64).map_err(internal)?;
    Ok(png(bytes))
}

async fn map(State(s): S, id: Id) -> Result<Json<Value>, ApiError> {
    let id = id?.0;
    s.run(id)?;
    s.work(move |s| {
        let e = s.run(id)?;
        let model = s.model(e)?;
        let m = s.map(e)?;
        Ok(Json(json!({
            "latent": model.latent(),
            "classes": model.classes(),
            "can_encode": model.can_encode(),
            "image": e.run.config.model.image(),
            "map": &*m,
        })))
    })
    .await
}

async fn sr_models(State(s): S) -> Json<Value> {
    let list: Vec<Value> =
        s.sr.iter()
            .enumerate()
            .map(|(id, m)| json!({ "id": id, "name": m.name, "scale": m.scale }))
            .collect();
    Json(json!({ "models": list }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpscaleQuery {
    format: Option<String>,
}

/// Upscales an uploaded photo: the network's result and bicubic's, as PNG data URLs (or the
/// network's PNG alone with `format=png`).
async fn upscale(
    State(s): S,
    id: Id,
    q: Result<Query<UpscaleQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (id, Query(q), body) = (id?.0, q?, body?);
    let as_png = match q.format.as_deref().unwrap_or("json") {
        "json" => false,
        "png" => true,
        f => return Err(ApiError::bad(format!("format {f:?}: expected json or png"))),
    };
    if s.sr.get(id).is_none() {
        return Err(ApiError::not_found(format!(
            "no super-resolution model {id}"
        )));
    }
    s.work(move |s| {
        let m = &s.sr[id];
        let img = decode_upload(&body)?;
        let (w, h) = (img.width() as u64, img.height() as u64);
        if w * h > MAX_SR_PIXELS {
            return Err(ApiError::too_large(format!(
                "upload: {w}x{h} pixels; the studio upscales photos up to {MAX_SR_PIXELS} pixels (use `genlab upscale` for larger ones)"
            )));
        }
        let pic = genlab::sr::Picture::from_image(&img);
        let out = s.sr_net(m)?.upscale(&pic, &s.device).map_err(|e| ApiError::bad(format!("{e:#}")))?;
        let sr = png_bytes(&out.to_image()).map_err(internal)?;
        if as_png {
            return Ok(png(sr));
        }
        let bic = pic.resize(out.h, out.w);
        let bic = png_bytes(&bic.to_image()).map_err(internal)?;
        Ok(Json(json!({
            "scale": m.scale,
            "width": pic.w, "height": pic.h,
            "out_width": out.w, "out_height": out.h,
            "sr": data_url(&sr),
            "bicubic": data_url(&bic),
        }))
        .into_response())
    })
    .await
}
