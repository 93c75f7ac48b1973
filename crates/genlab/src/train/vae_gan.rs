//! The VAE-GAN's training steps: the joint recipe and Larsen et al.'s (see
//! [`crate::models::vae_gan`]). The adversarial family in [`super::gan`] calls them; they share
//! its [`GanStep`] statistics.

use burn::module::list_param_ids;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use super::family::{At, finite, scalar};
use super::gan::GanStep;
use crate::error::Result;
use crate::models::dcgan::to_tanh;
use crate::models::vae_gan::Recon;
use crate::models::{Vae, VaeGan};

/// One step of the VAE-GAN's joint recipe on real images `x` (in [0, 1]), posterior noise `eps`
/// and prior noise `z_p`: update D on real vs reconstructed and sampled images, then update the
/// encoder and decoder on `recon + beta KL + lambda adversarial` (the encoder and decoder share
/// one loss).
///
/// # Shapes
/// `x: [b, c, h, w]`, `eps, z_p: [b, latent]`
pub fn joint_step(
    mut m: VaeGan,
    optim: &mut ModuleOptimizer,
    x: Tensor<4>,
    eps: Tensor<2>,
    z_p: Tensor<2>,
    lr: f64,
    at: At,
) -> Result<(VaeGan, GanStep)> {
    let (loss, real_target, lambda) = (
        m.config.loss,
        m.config.real_target(),
        m.config.adversarial_weight,
    );
    let (obj, x_rec) = m.vae_objective(x.clone(), eps); // x_rec: [b, c, h, w]
    let x_p = m.vae.decode(z_p); // [b, c, h, w]
    let fakes = to_tanh(Tensor::cat(vec![x_rec, x_p], 0)); // [2b, c, h, w]

    // (1) update D: real images towards "real"; reconstructions and samples (detached) towards
    // "fake". The real logits are repeated so both kinds of fake weigh as much as the reals.
    let real_logit = m.discriminator.forward(to_tanh(x)); // [b, 1]
    let fake_logit = m.discriminator.forward(fakes.clone().detach()); // [2b, 1]
    let real2 = Tensor::cat(vec![real_logit.clone(), real_logit.clone()], 0); // [2b, 1]
    let d_loss_t = loss
        .discriminator(real2, fake_logit.clone(), real_target)
        .mean();
    let d_loss = scalar(d_loss_t.clone());
    finite(d_loss, "discriminator loss", at)?;
    let grads = GradientsParams::from_grads(d_loss_t.backward(), &m.discriminator);
    m.discriminator = optim.step(lr, m.discriminator, grads);

    // (2) update the encoder and decoder: the VAE loss plus lambda times the updated D's
    // adversarial loss on the same reconstructions and samples (D untracked, as in `dcgan_step`).
    let adv_t = loss
        .generator(m.discriminator.clone().no_grad().forward(fakes))
        .mean();
    let total = obj.loss.clone() + adv_t.clone().mul_scalar(lambda);
    let g_loss = scalar(adv_t);
    finite(scalar(total.clone()), "encoder/decoder loss", at)?;
    let grads = GradientsParams::from_grads(total.backward(), &m.vae);
    m.vae = optim.step(lr, m.vae, grads);

    let b = real_logit.dims()[0];
    let stats = GanStep {
        d_loss,
        g_loss,
        d_real_sum: scalar(sigmoid(real_logit).sum()),
        // D(G(z)) over the prior samples, the second half of the fakes.
        d_fake_sum: scalar(sigmoid(fake_logit.clone().narrow(0, b, b)).sum()),
        recon_sum: scalar(obj.recon.sum()),
        kl_sum: obj.kl.map_or(0.0, |k| scalar(k.sum())),
        d_recon_sum: scalar(sigmoid(fake_logit.narrow(0, 0, b)).sum()),
        d_skipped: false,
        dec_skipped: false,
    };
    Ok((m, stats))
}

/// Which updates the balance rule allows, from the discriminator's mean cross-entropies on the
/// real images and on the fakes (the official code's `margin_train`): D sits out when either is
/// below `equilibrium - margin` (D is winning), the decoder when either is above
/// `equilibrium + margin` (D is losing badly); both run when both would sit out. Returns
/// (update D, update the decoder).
pub fn balance(real_cost: f64, fake_cost: f64, equilibrium: f64, margin: f64) -> (bool, bool) {
    let d = !(real_cost < equilibrium - margin || fake_cost < equilibrium - margin);
    let dec = !(real_cost > equilibrium + margin || fake_cost > equilibrium + margin);
    if d || dec { (d, dec) } else { (true, true) }
}

/// Gradient scaling: the value of `x`, with the gradient multiplied by `s` on its way back.
///
/// # Shapes
/// `[b, n] -> [b, n]`
pub(crate) fn scale_gradient(x: Tensor<2>, s: f64) -> Tensor<2> {
    let stop = x.clone().detach();
    // x - stop is exactly 0 forward; backward it passes s times the gradient.
    stop.clone() + (x - stop).mul_scalar(s)
}

/// The Larsen recipe's losses for one batch, all from the current discriminator.
pub struct LarsenTerms {
    /// Per-image KL, `[b]`.
    pub kl: Tensor<1>,
    /// Per-image reconstruction error, `[b]`.
    pub recon: Tensor<1>,
    /// `beta mean KL + gamma mean recon`: the encoder sees `beta KL + recon` (the code passes
    /// back `1 / gamma` of the reconstruction gradient), the decoder `gamma recon`.
    pub vae_loss: Tensor<1>,
    /// The decoder's GAN loss on reconstructions (codes detached) and prior samples, through
    /// an untracked discriminator, `[1]`.
    pub adv: Tensor<1>,
    /// The discriminator's loss, fakes detached, `[1]`.
    pub d_loss: Tensor<1>,
    /// D's logits on the real images, `[b, 1]`.
    pub real_logit: Tensor<2>,
    /// D's logits on the reconstructions then the prior samples, `[2b, 1]`.
    pub fake_logit: Tensor<2>,
}

/// The Larsen recipe's losses (see [`larsen_step`]).
///
/// # Shapes
/// `x: [b, c, h, w]` in [0, 1], `eps, z_p: [b, latent]`
pub fn larsen_terms(m: &VaeGan, x: Tensor<4>, eps: Tensor<2>, z_p: Tensor<2>) -> LarsenTerms {
    let c = &m.config;
    let x_t = to_tanh(x.clone()); // [b, c, h, w] in [-1, 1]
    let frozen = m.discriminator.clone().no_grad();

    // The discriminator on the real images, which also gives the feature target Dis_l(x).
    let (real_logit, f_real) = m.discriminator.forward_with_layer(x_t, c.recon_layer); // [b, 1], [b, f]

    // Encoder and the reconstruction path.
    let (mu, logvar) = m.vae.encode(x.clone()); // [b, latent] x2
    let kl = crate::loss::kl_standard_normal(mu.clone(), logvar.clone()); // [b]
    let z = Vae::reparameterize(mu, logvar, eps); // [b, latent]
    let logits = m
        .vae
        .decode_logits(scale_gradient(z.clone(), 1.0 / c.gamma)); // [b, c, h, w]
    let recon = match c.recon {
        // Eq. 7: a Gaussian around Dis_l(x), -log N = |f_rec - f_real|^2 / (2 s^2) up to a
        // constant. The paper takes s = 1; here s^2 is the real batch's feature variance
        // (detached), because D is blind to the scale of a layer that batch norm follows, and
        // under DCGAN's N(0, 0.02) init that scale starts near 1e-2: with s = 1 the term
        // vanished against the KL and the posterior collapsed (BENCHMARKS.md).
        Recon::Features => {
            let f_real = f_real.detach();
            let s2 = f_real.clone().var(0).mean().clamp_min(1e-12); // [1]
            let x_rec = to_tanh(sigmoid(logits)); // [b, c, h, w]
            let f_rec = frozen.layer_features(x_rec, c.recon_layer); // [b, f]
            crate::loss::squared_error(f_rec, f_real).div(s2.mul_scalar(2.0))
        }
        Recon::Pixels => m.vae.reconstruction_nll(logits, x), // [b]
    };
    let vae_loss =
        kl.clone().mul_scalar(c.vae.beta).mean() + recon.clone().mean().mul_scalar(c.gamma);

    // The GAN path: reconstructions from detached codes and prior samples.
    let fakes = to_tanh(m.vae.decode(Tensor::cat(vec![z.detach(), z_p], 0))); // [2b, c, h, w]
    let fake_logit = m.discriminator.forward(fakes.clone().detach()); // [2b, 1]
    // The real logits twice, so both kinds of fake weigh as much as the reals.
    let real2 = Tensor::cat(vec![real_logit.clone(), real_logit.clone()], 0); // [2b, 1]
    let d_loss = c
        .loss
        .discriminator(real2, fake_logit.clone(), c.real_target())
        .mean();
    let adv = c.loss.generator(frozen.forward(fakes)).mean();
    LarsenTerms {
        kl,
        recon,
        vae_loss,
        adv,
        d_loss,
        real_logit,
        fake_logit,
    }
}

/// One step of the VAE-GAN's Larsen recipe (Larsen et al. 2016, Algorithm 1) on real images
/// `x` (in [0, 1]), posterior noise `eps` and prior noise `z_p`. All losses are computed with
/// the current discriminator ([`larsen_terms`]), then one backward pass gives each network its
/// own gradient:
/// - encoder: `beta KL + recon`;
/// - decoder: `gamma recon + lambda GAN` on reconstructions (the encoder's codes detached, so
///   the GAN gradient stops at the decoder, as the official code's `ScaleGradient(0)`) and on
///   prior samples;
/// - discriminator: the GAN loss on the real images against both kinds of fake.
///
/// The balance rule ([`balance`]) may leave out D's or the decoder's update (their terms then
/// stay out of the backward pass); the encoder always learns.
///
/// # Shapes
/// `x: [b, c, h, w]`, `eps, z_p: [b, latent]`
pub fn larsen_step(
    mut m: VaeGan,
    optim: &mut ModuleOptimizer,
    x: Tensor<4>,
    eps: Tensor<2>,
    z_p: Tensor<2>,
    lr: f64,
    at: At,
) -> Result<(VaeGan, GanStep)> {
    let c = m.config.clone();
    let b = x.dims()[0];
    let t = larsen_terms(&m, x, eps, z_p);

    // The balance rule reads D's cross-entropies (whatever the GAN loss), as the official code.
    let ce = |logits: Tensor<2>, target: Tensor<2>| {
        scalar(crate::loss::bce_with_logits(logits, target).mean())
    };
    let real_cost = ce(t.real_logit.clone(), t.real_logit.ones_like());
    let fake_cost = ce(t.fake_logit.clone(), t.fake_logit.zeros_like());
    let (update_d, update_dec) = if c.balance {
        balance(real_cost, fake_cost, c.equilibrium, c.margin)
    } else {
        (true, true)
    };

    let (d_loss, g_loss) = (scalar(t.d_loss.clone()), scalar(t.adv.clone()));
    finite(d_loss, "discriminator loss", at)?;
    finite(g_loss, "decoder GAN loss", at)?;
    finite(scalar(t.vae_loss.clone()), "encoder/decoder loss", at)?;
    let mut total = t.vae_loss;
    if update_dec {
        total = total + t.adv.mul_scalar(c.adversarial_weight);
    }
    if update_d {
        total = total + t.d_loss;
    }
    let mut grads = total.backward();
    let mut ids = encoder_param_ids(&m);
    if update_dec {
        ids.extend(list_param_ids(&m.vae.decoder));
    }
    let vae_grads = GradientsParams::from_params(&mut grads, &m.vae, &ids);
    if update_d {
        let d_grads = GradientsParams::from_module(&mut grads, &m.discriminator);
        m.discriminator = optim.step(lr, m.discriminator, d_grads);
    }
    m.vae = optim.step(lr, m.vae, vae_grads);

    let stats = GanStep {
        d_loss,
        g_loss,
        d_real_sum: scalar(sigmoid(t.real_logit).sum()),
        d_fake_sum: scalar(sigmoid(t.fake_logit.clone().narrow(0, b, b)).sum()),
        recon_sum: scalar(t.recon.sum()),
        kl_sum: scalar(t.kl.sum()),
        d_recon_sum: scalar(sigmoid(t.fake_logit.narrow(0, 0, b)).sum()),
        d_skipped: !update_d,
        dec_skipped: !update_dec,
    };
    Ok((m, stats))
}

/// The encoder's parameters: its body and the two heads.
fn encoder_param_ids(m: &VaeGan) -> Vec<burn::module::ParamId> {
    let mut ids = list_param_ids(&m.vae.encoder);
    ids.extend(list_param_ids(&m.vae.fc_mu));
    ids.extend(list_param_ids(&m.vae.fc_logvar));
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_rule_follows_the_official_margins() {
        let (eq, m) = (0.68, 0.35);
        assert_eq!(balance(0.6, 0.7, eq, m), (true, true));
        // D winning on the reals or on the fakes: D sits out.
        assert_eq!(balance(0.2, 0.7, eq, m), (false, true));
        assert_eq!(balance(0.6, 0.3, eq, m), (false, true));
        // D losing badly: the decoder sits out.
        assert_eq!(balance(1.2, 0.7, eq, m), (true, false));
        // Both would sit out (one cost low, the other high): both run.
        assert_eq!(balance(0.1, 1.5, eq, m), (true, true));
    }

    /// One backward pass of the Larsen step's total gives each network the gradient of its own
    /// loss, checked against separate backward passes of each loss on a copy of the model
    /// (gamma = 1 there, where the gradient scaling is the identity): encoder <- beta KL +
    /// recon, decoder <- gamma recon + lambda GAN, discriminator <- its GAN loss.
    #[test]
    fn larsen_step_routes_each_loss_to_its_network() {
        use crate::models::VaeGanConfig;
        use crate::models::vae_gan::Recon;
        let d = Device::flex().autodiff();
        let mut cfg = VaeGanConfig::default();
        cfg.vae.channels = vec![4, 8];
        cfg.vae.latent = 3;
        cfg.vae.beta = 1.5;
        cfg.d_channels = vec![4, 8];
        cfg.adversarial_weight = 0.7;
        let noise = |n: usize, k: usize, m: f32| {
            (0..n)
                .map(|i| (((i * k) % 17) as f32 / 17.0 - 0.5) * m)
                .collect::<Vec<_>>()
        };
        let x = Tensor::<4>::from_data(
            TensorData::new(
                noise(4 * 784, 7, 1.0).iter().map(|v| v + 0.5).collect(),
                [4, 1, 28, 28],
            ),
            &d,
        );
        let eps = Tensor::<2>::from_data(TensorData::new(noise(12, 5, 2.0), [4, 3]), &d);
        let z_p = Tensor::<2>::from_data(TensorData::new(noise(12, 11, 2.0), [4, 3]), &d);
        let base = cfg.init(&d);
        let values = |g: &GradientsParams, id| -> Vec<f32> {
            g.get::<4>(id)
                .expect("grad")
                .into_data()
                .try_into_vec::<f32>()
                .expect("f32")
        };
        for recon in [Recon::Features, Recon::Pixels] {
            let gamma = 0.01;
            let copy = |gamma: f64| {
                let mut c = cfg.clone();
                c.recon = recon;
                c.gamma = gamma;
                c.init(&d).load_record(base.clone().into_record())
            };
            // The step's single backward.
            let m = copy(gamma);
            let t = larsen_terms(&m, x.clone(), eps.clone(), z_p.clone());
            let total = t.vae_loss + t.adv.mul_scalar(cfg.adversarial_weight) + t.d_loss;
            let mut g = total.backward();
            let (enc, dec, dis) = (
                GradientsParams::from_module(&mut g, &m.vae.encoder),
                GradientsParams::from_module(&mut g, &m.vae.decoder),
                GradientsParams::from_module(&mut g, &m.discriminator),
            );
            // Each loss alone.
            let alone = |pick: &dyn Fn(LarsenTerms) -> Tensor<1>| {
                let m = copy(1.0);
                let mut g = pick(larsen_terms(&m, x.clone(), eps.clone(), z_p.clone())).backward();
                (
                    GradientsParams::from_module(&mut g, &m.vae.encoder),
                    GradientsParams::from_module(&mut g, &m.vae.decoder),
                    GradientsParams::from_module(&mut g, &m.discriminator),
                )
            };
            let beta = cfg.vae.beta;
            let (enc_ref, _, _) = alone(&|t| t.kl.mul_scalar(beta).mean() + t.recon.mean());
            let (_, dec_recon, _) = alone(&|t| t.recon.mean());
            let (_, dec_adv, _) = alone(&|t| t.adv);
            let (_, _, dis_ref) = alone(&|t| t.d_loss);
            let close = |a: &[f32], b: &[f32], what: &str| {
                let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
                for (x, y) in a.iter().zip(b) {
                    assert!(
                        (x - y).abs() <= 2e-3 * scale,
                        "{recon:?} {what}: {x} vs {y}"
                    );
                }
            };
            let e_id = m.vae.encoder.conv.as_ref().expect("conv").convs[0]
                .weight
                .id;
            close(&values(&enc, e_id), &values(&enc_ref, e_id), "encoder");
            let d_id = m.vae.decoder.conv.as_ref().expect("conv").deconvs[0]
                .weight
                .id;
            let want: Vec<f32> = values(&dec_recon, d_id)
                .iter()
                .zip(values(&dec_adv, d_id))
                .map(|(r, a)| gamma as f32 * r + cfg.adversarial_weight as f32 * a)
                .collect();
            close(&values(&dec, d_id), &want, "decoder");
            let c_id = m.discriminator.convs[1].weight.id;
            close(
                &values(&dis, c_id),
                &values(&dis_ref, c_id),
                "discriminator",
            );
        }
    }
}
