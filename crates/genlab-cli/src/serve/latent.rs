//! The latent-space routes of the studio: decode, sample, interpolate, encode an upload, GAN
//! inversion, and the memorisation check. Each checks its request into bounded values, then
//! runs on the studio's pool.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::response::Response;
use burn::prelude::*;
use genlab::explore::{Explorer, invert, nearest_features, nearest_pixels, path};
use genlab::image_io::{declared_size, decode_image, grid_png, image_tensor, pixels_to_tensor};
use genlab::image_io::{png_bytes, tensor_image};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::api::{Id, MAX_SIDE, S, data_url, internal, png};
use super::studio::vec_of;

/// Bounds of the counts a request gives.
const MAX_SAMPLES: usize = 256;
const MAX_STEPS: usize = 64;
const MAX_NEIGHBOURS: usize = 32;
const MAX_INVERT_STEPS: usize = 2000;
/// The largest magnitude of a latent coordinate a request may give (priors are N(0, 1);
/// autoencoder codes are larger, but not this large).
const MAX_COORD: f32 = 1000.0;
/// Starting points of a GAN inversion (tried at once, the best kept).
const INVERT_RESTARTS: usize = 4;

/// Checks a latent point from a request.
fn check_z(z: &[f32], model: &Explorer, what: &str) -> Result<(), ApiError> {
    if z.len() != model.latent() {
        return Err(ApiError::bad(format!(
            "{what}: {} values; this model's latent space has {}",
            z.len(),
            model.latent()
        )));
    }
    if let Some(v) = z.iter().find(|v| !v.is_finite() || v.abs() > MAX_COORD) {
        return Err(ApiError::bad(format!(
            "{what}: {v} is not a finite value within +-{MAX_COORD}"
        )));
    }
    Ok(())
}

/// The labels of `rows` images of `class` (required by a conditional model, refused by the
/// others); `in_turn` lets a conditional model without `class` take the classes in turn.
fn labels(
    model: &Explorer,
    class: Option<usize>,
    rows: usize,
    in_turn: bool,
) -> Result<Vec<usize>, ApiError> {
    let k = model.classes().len();
    match (k, class) {
        (0, None) => Ok(Vec::new()),
        (0, Some(_)) => Err(ApiError::bad(
            "class: this model is not conditional; leave class out",
        )),
        (_, Some(c)) if c < k => Ok(vec![c; rows]),
        (_, Some(c)) => Err(ApiError::bad(format!(
            "class {c}: this model has classes 0..{}",
            k - 1
        ))),
        (_, None) if in_turn => Ok(genlab::models::classes_in_turn(rows, k)),
        (_, None) => Err(ApiError::bad(format!(
            "class: this model draws a class; give one of 0..{}",
            k - 1
        ))),
    }
}

fn bounded(
    v: Option<usize>,
    default: usize,
    lo: usize,
    hi: usize,
    what: &str,
) -> Result<usize, ApiError> {
    let v = v.unwrap_or(default);
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::bad(format!("{what} {v}: expected {lo} to {hi}")))
    }
}

fn rows(z: &[Vec<f32>], device: &Device) -> Tensor<2> {
    let d = z.first().map_or(0, Vec::len);
    let flat: Vec<f32> = z.iter().flatten().copied().collect();
    Tensor::from_data(burn::tensor::TensorData::new(flat, [z.len(), d]), device)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DecodeReq {
    z: Vec<f32>,
    class: Option<usize>,
}

/// One point of latent space as a PNG.
pub(super) async fn decode(
    State(s): S,
    id: Id,
    body: Result<Json<DecodeReq>, JsonRejection>,
) -> Result<Response, ApiError> {
    let (id, Json(r)) = (id?.0, body?);
    s.run(id)?;
    s.work(move |s| {
        let model = s.model(s.run(id)?)?;
        check_z(&r.z, &model, "z")?;
        let y = labels(&model, r.class, 1, false)?;
        let x = model
            .decode(rows(&[r.z], &s.device), &y)
            .map_err(internal)?;
        let img = tensor_image(x, std::path::Path::new("decoded image")).map_err(internal)?;
        Ok(png(png_bytes(&img).map_err(internal)?))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SampleReq {
    n: Option<usize>,
    #[serde(default)]
    seed: u64,
    class: Option<usize>,
}

/// A grid of `n` samples drawn with `seed` (a conditional model without `class`: the classes
/// in turn, a column each).
pub(super) async fn sample(
    State(s): S,
    id: Id,
    body: Result<Json<SampleReq>, JsonRejection>,
) -> Result<Response, ApiError> {
    let (id, Json(r)) = (id?.0, body?);
    let n = bounded(r.n, 64, 1, MAX_SAMPLES, "n")?;
    s.run(id)?;
    s.work(move |s| {
        let model = s.model(s.run(id)?)?;
        if !model.has_prior() {
            return Err(ApiError::bad(
                "an autoencoder's codes have no prior to sample from (use the map or a vae/gan run)",
            ));
        }
        let y = labels(&model, r.class, n, true)?;
        let mut rng = genlab::rng::rng_for(r.seed, genlab::rng::stream::SAMPLE, 0);
        let z = genlab::rng::standard_normal(&mut rng, n, model.latent(), &s.device);
        let x = model.decode(z, &y).map_err(internal)?;
        let k = model.classes().len();
        let cols = if k > 0 && r.class.is_none() {
            k
        } else {
            (n as f64).sqrt().ceil() as usize
        };
        Ok(png(grid_png(x, cols, std::path::Path::new("samples")).map_err(internal)?))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InterpReq {
    a: Vec<f32>,
    b: Vec<f32>,
    steps: Option<usize>,
    mode: Option<String>,
    class: Option<usize>,
}

/// A strip of `steps` images from `a` to `b` (`mode`: `linear` or `slerp`).
pub(super) async fn interpolate(
    State(s): S,
    id: Id,
    body: Result<Json<InterpReq>, JsonRejection>,
) -> Result<Response, ApiError> {
    let (id, Json(r)) = (id?.0, body?);
    let steps = bounded(r.steps, 10, 2, MAX_STEPS, "steps")?;
    let spherical = match r.mode.as_deref().unwrap_or("linear") {
        "linear" => false,
        "slerp" => true,
        m => {
            return Err(ApiError::bad(format!(
                "mode {m:?}: expected linear or slerp"
            )));
        }
    };
    s.run(id)?;
    s.work(move |s| {
        let model = s.model(s.run(id)?)?;
        check_z(&r.a, &model, "a")?;
        check_z(&r.b, &model, "b")?;
        let y = labels(&model, r.class, steps, false)?;
        let z = rows(&path(&r.a, &r.b, steps, spherical), &s.device);
        let x = model.decode(z, &y).map_err(internal)?;
        Ok(png(grid_png(
            x,
            steps,
            std::path::Path::new("interpolation"),
        )
        .map_err(internal)?))
    })
    .await
}

/// An uploaded image, checked (size, declared dimensions) before it is decoded, as the
/// model's `[1, c, h, w]` input; also returns that input as PNG.
fn upload(
    bytes: &[u8],
    shape: [usize; 3],
    device: &Device,
) -> Result<(Tensor<4>, Vec<u8>), ApiError> {
    let x = image_tensor(&decode_upload(bytes)?, shape, device);
    let shown = tensor_image(x.clone(), std::path::Path::new("upload")).map_err(internal)?;
    Ok((x, png_bytes(&shown).map_err(internal)?))
}

pub(super) fn decode_upload(bytes: &[u8]) -> Result<image::DynamicImage, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad(
            "the request has no image (send the file as the body)",
        ));
    }
    let Some((w, h)) = declared_size(bytes) else {
        return Err(ApiError::bad(
            "upload: not a PNG, JPEG or BMP image (unrecognised content)",
        ));
    };
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(ApiError::too_large(format!(
            "upload: {w}x{h} pixels; the studio takes images up to {MAX_SIDE}x{MAX_SIDE}"
        )));
    }
    decode_image(bytes, std::path::Path::new("upload")).map_err(|e| ApiError::bad(e.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClassQuery {
    class: Option<usize>,
}

/// Encodes an uploaded image: its code, its place on the map and its reconstruction.
pub(super) async fn encode(
    State(s): S,
    id: Id,
    q: Result<Query<ClassQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let (id, Query(q), body) = (id?.0, q?, body?);
    s.run(id)?;
    s.work(move |s| {
        let e = s.run(id)?;
        let model = s.model(e)?;
        if !model.can_encode() {
            return Err(ApiError::bad(
                "a GAN has no encoder; use invert to find the noise of an image",
            ));
        }
        let y = labels(&model, q.class, 1, false)?;
        let (x, input) = upload(&body, e.run.config.model.image(), &s.device)?;
        let z = model
            .encode(x.clone(), &y)
            .map_err(internal)?
            .expect("an encoder");
        let r = model.decode(z.clone(), &y).map_err(internal)?;
        let mse: f32 = (r.clone() - x).powi_scalar(2).mean().into_scalar();
        let z = vec_of(z)?;
        let point = s.map(e)?.pca.project(&z);
        let recon =
            png_bytes(&tensor_image(r, std::path::Path::new("reconstruction")).map_err(internal)?)
                .map_err(internal)?;
        Ok(Json(json!({
            "z": z,
            "point": [point[0], point.get(1).copied().unwrap_or(0.0)],
            "mse": mse,
            "input": data_url(&input),
            "reconstruction": data_url(&recon),
        })))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InvertQuery {
    class: Option<usize>,
    steps: Option<usize>,
    #[serde(default)]
    seed: u64,
}

/// GAN inversion of an uploaded image: the noise whose image is closest, and its error.
pub(super) async fn invert_image(
    State(s): S,
    id: Id,
    q: Result<Query<InvertQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let (id, Query(q), body) = (id?.0, q?, body?);
    let steps = bounded(q.steps, 300, 1, MAX_INVERT_STEPS, "steps")?;
    s.run(id)?;
    s.work(move |s| {
        let e = s.run(id)?;
        let model = s.model(e)?;
        if !model.has_prior() {
            return Err(ApiError::bad(
                "an autoencoder has no prior to invert into; use encode",
            ));
        }
        let y = labels(&model, q.class, 1, false)?;
        let (x, input) = upload(&body, e.run.config.model.image(), &s.device)?;
        let ad = s.device.clone().autodiff();
        let frozen = model.frozen_on(&ad);
        let found = invert(
            &frozen,
            x.to_device(&ad),
            &y,
            steps,
            INVERT_RESTARTS,
            q.seed,
        )
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
        let img = model
            .decode(rows(std::slice::from_ref(&found.z), &s.device), &y)
            .map_err(internal)?;
        let shown =
            png_bytes(&tensor_image(img, std::path::Path::new("inversion")).map_err(internal)?)
                .map_err(internal)?;
        let point = s.map(e)?.pca.project(&found.z);
        Ok(Json(json!({
            "z": found.z,
            "mse": found.mse,
            "psnr": -10.0 * (found.mse.max(1e-10) as f64).log10(),
            "steps": steps,
            "point": [point[0], point.get(1).copied().unwrap_or(0.0)],
            "input": data_url(&input),
            "image": data_url(&shown),
        })))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NeighboursReq {
    z: Vec<f32>,
    class: Option<usize>,
    k: Option<usize>,
}

/// The memorisation check: the image at `z` and its `k` nearest training images, in pixels
/// and in the shipped classifier's features.
pub(super) async fn neighbours(
    State(s): S,
    id: Id,
    body: Result<Json<NeighboursReq>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let (id, Json(r)) = (id?.0, body?);
    let k = bounded(r.k, 8, 1, MAX_NEIGHBOURS, "k")?;
    s.run(id)?;
    s.work(move |s| {
        let e = s.run(id)?;
        let model = s.model(e)?;
        check_z(&r.z, &model, "z")?;
        let y = labels(&model, r.class, 1, false)?;
        let x = model
            .decode(rows(&[r.z], &s.device), &y)
            .map_err(internal)?; // [1, c, h, w]
        let data = s.dataset(e)?;
        let train = &data.train;
        let (q, _) = genlab::image_io::tensor_to_vec(x.clone()).map_err(internal)?;
        let show = |list: Vec<genlab::explore::Neighbour>| -> Result<Vec<Value>, ApiError> {
            list.into_iter()
                .map(|n| {
                    let [c, h, w] = train.shape;
                    let t = pixels_to_tensor(train.image(n.index), [1, c, h, w], &s.device);
                    let img = png_bytes(
                        &tensor_image(t, std::path::Path::new("training image"))
                            .map_err(internal)?,
                    )
                    .map_err(internal)?;
                    Ok(json!({ "index": n.index, "distance": n.distance, "image": data_url(&img) }))
                })
                .collect()
        };
        let pixels = show(nearest_pixels(train, &q, k).map_err(internal)?)?;
        let (features, net) = match s.features(e)? {
            Some(f) => {
                let (net, feats) = &*f;
                let fq =
                    vec_of(net.model.features(x.clone())).map_err(|e| ApiError::internal(e.msg))?;
                (
                    Some(show(nearest_features(feats, &fq, k).map_err(internal)?)?),
                    Some(net.name.clone()),
                )
            }
            None => (None, None),
        };
        let sample = png_bytes(&tensor_image(x, std::path::Path::new("sample")).map_err(internal)?)
            .map_err(internal)?;
        Ok(Json(json!({
            "sample": data_url(&sample),
            "train_images": train.len(),
            "pixels": pixels,
            "features": features,
            "feature_net": net,
        })))
    })
    .await
}
