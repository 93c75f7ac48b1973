//! The conditional VAE-GAN's training step: Larsen et al.'s recipe ([`super::vae_gan`]'s
//! `larsen_step`) on a [`Cvae`] with `[model.adversarial]`, whose discriminator is the cGAN's
//! projection discriminator. Everything the discriminator sees carries the batch's labels: the
//! real images, their reconstructions given the label and prior samples `Dec(m_y + z_p, y)` of
//! the same classes, so its verdict is "a real image of this class" and the decoder learns to
//! draw what tells one class from its neighbours.

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use super::family::{At, finite, scalar};
use super::vae_gan::scale_gradient;
use crate::error::Result;
use crate::models::cgan::ProjectionDiscriminator;
use crate::models::dcgan::to_tanh;
use crate::models::vae_gan::Recon;
use crate::models::{Cvae, CvaeAdversarial, Vae};

/// The conditional VAE-GAN's losses for one batch, all from the current discriminator.
pub struct CvaeGanTerms {
    /// Per-image KL to the class prior `N(m_y, I)`, `[b]`.
    pub kl: Tensor<1>,
    /// Per-image reconstruction error the networks train on (features or pixels), `[b]`.
    pub recon: Tensor<1>,
    /// Per-image pixel `-log p(x|z, y)` of the same reconstructions, for the record, `[b]`.
    pub pixel_nll: Tensor<1>,
    /// `beta mean KL + gamma mean recon`: the encoder sees `beta KL + recon` (the gradient into
    /// the code is scaled by `1 / gamma`), the decoder `gamma recon`.
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

/// The conditional VAE-GAN's losses (see [`cvae_gan_step`]).
///
/// # Shapes
/// `x: [b, c, h, w]` in [0, 1], `y: [b, classes]` one-hot, `eps, z_p: [b, latent]`
pub fn cvae_gan_terms(
    m: &Cvae,
    d: &ProjectionDiscriminator,
    a: &CvaeAdversarial,
    x: Tensor<4>,
    y: Tensor<2>,
    eps: Tensor<2>,
    z_p: Tensor<2>,
) -> CvaeGanTerms {
    let frozen = d.clone().no_grad();
    // The discriminator on the real images, which also gives the feature target Dis_l(x).
    let (real_logit, f_real) = d.forward_with_layer(to_tanh(x.clone()), y.clone(), a.recon_layer); // [b, 1], [b, f]

    // Encoder, KL to the class prior, and the reconstruction path.
    let (mu, logvar) = m.encode(x.clone(), y.clone()); // [b, latent] x2
    let shifted = mu.clone() - m.prior_mean(y.clone()); // [b, latent]
    let kl = crate::loss::kl_standard_normal(shifted, logvar.clone()); // [b]
    let z = Vae::reparameterize(mu, logvar, eps); // [b, latent]
    let logits = m.decode_logits(scale_gradient(z.clone(), 1.0 / a.gamma), y.clone()); // [b, c, h, w]
    let pixel_nll = m.reconstruction_nll(logits.clone().detach(), x.clone()); // [b]
    let recon = match a.recon {
        // As the VAE-GAN's: a Gaussian around Dis_l(x) whose variance is the real batch's
        // feature variance (detached), see `vae_gan::larsen_terms`.
        Recon::Features => {
            let f_real = f_real.detach();
            let s2 = f_real.clone().var(0).mean().clamp_min(1e-12); // [1]
            let x_rec = to_tanh(sigmoid(logits)); // [b, c, h, w]
            let f_rec = frozen.layer_features(x_rec, y.clone(), a.recon_layer); // [b, f]
            crate::loss::squared_error(f_rec, f_real).div(s2.mul_scalar(2.0))
        }
        Recon::Pixels => m.reconstruction_nll(logits, x), // [b]
    };
    let vae_loss =
        kl.clone().mul_scalar(m.config.beta).mean() + recon.clone().mean().mul_scalar(a.gamma);

    // The GAN path: reconstructions from detached codes and samples of the prior of the same
    // classes (its mean detached: the prior is learned from the KL alone, as in the plain cVAE).
    let z_prior = m.prior_mean(y.clone()).detach() + z_p; // [b, latent]
    let y2 = Tensor::cat(vec![y.clone(), y], 0); // [2b, classes]
    let fakes = to_tanh(m.decode(Tensor::cat(vec![z.detach(), z_prior], 0), y2.clone())); // [2b, c, h, w]
    let fake_logit = d.forward(fakes.clone().detach(), y2.clone()); // [2b, 1]
    // The real logits twice, so both kinds of fake weigh as much as the reals.
    let real2 = Tensor::cat(vec![real_logit.clone(), real_logit.clone()], 0); // [2b, 1]
    let d_loss = a.loss.discriminator(real2, fake_logit.clone(), 1.0).mean();
    let adv = a.loss.generator(frozen.forward(fakes, y2)).mean();
    CvaeGanTerms {
        kl,
        recon,
        pixel_nll,
        vae_loss,
        adv,
        d_loss,
        real_logit,
        fake_logit,
    }
}

/// A conditional VAE-GAN step's figures, summed over the batch where they are per image.
pub struct CvaeGanStep {
    /// Pixel `-log p(x|z, y)` summed over the batch.
    pub pixel_nll_sum: f64,
    /// KL summed over the batch.
    pub kl_sum: f64,
    /// The trained reconstruction error summed over the batch.
    pub recon_sum: f64,
    /// Discriminator loss (batch mean).
    pub d_loss: f64,
    /// Decoder GAN loss (batch mean).
    pub g_loss: f64,
    /// Sums of `D` on the reals, the prior samples and the reconstructions.
    pub d_real_sum: f64,
    /// See `d_real_sum`.
    pub d_fake_sum: f64,
    /// See `d_real_sum`.
    pub d_recon_sum: f64,
}

/// One step of the conditional VAE-GAN `m` (its discriminator `d` taken out of it, put back
/// after the update) with settings `a`, on real images `x` (in [0, 1]) of one-hot classes `y`,
/// posterior noise `eps` and prior noise `z_p`: the losses of [`cvae_gan_terms`], then one
/// backward pass gives each network its own gradient (as the VAE-GAN's `larsen_step`):
/// - encoder (and the prior means): `beta KL + recon`;
/// - decoder: `gamma recon + lambda GAN` on reconstructions and prior samples;
/// - discriminator: the GAN loss on the real images against both kinds of fake.
///
/// # Shapes
/// `x: [b, c, h, w]`, `y: [b, classes]`, `eps, z_p: [b, latent]`
#[allow(clippy::too_many_arguments)]
pub fn cvae_gan_step(
    mut m: Cvae,
    d: ProjectionDiscriminator,
    a: &CvaeAdversarial,
    optim: &mut ModuleOptimizer,
    x: Tensor<4>,
    y: Tensor<2>,
    eps: Tensor<2>,
    z_p: Tensor<2>,
    lr: f64,
    at: At,
) -> Result<(Cvae, CvaeGanStep)> {
    let b = x.dims()[0];
    let t = cvae_gan_terms(&m, &d, a, x, y, eps, z_p);
    let (d_loss, g_loss) = (scalar(t.d_loss.clone()), scalar(t.adv.clone()));
    finite(d_loss, "discriminator loss", at)?;
    finite(g_loss, "decoder GAN loss", at)?;
    finite(scalar(t.vae_loss.clone()), "encoder/decoder loss", at)?;
    let total = t.vae_loss + t.adv.mul_scalar(a.weight) + t.d_loss;
    let mut grads = total.backward();
    // `m` holds no discriminator here (the family took it out), so these are the VAE's own.
    let vae_grads = GradientsParams::from_module(&mut grads, &m);
    let d_grads = GradientsParams::from_module(&mut grads, &d);
    m = optim.step(lr, m, vae_grads);
    m.discriminator = Some(optim.step(lr, d, d_grads));
    let stats = CvaeGanStep {
        pixel_nll_sum: scalar(t.pixel_nll.sum()),
        kl_sum: scalar(t.kl.sum()),
        recon_sum: scalar(t.recon.sum()),
        d_loss,
        g_loss,
        d_real_sum: scalar(sigmoid(t.real_logit).sum()),
        d_fake_sum: scalar(sigmoid(t.fake_logit.clone().narrow(0, b, b)).sum()),
        d_recon_sum: scalar(sigmoid(t.fake_logit.narrow(0, 0, b)).sum()),
    };
    Ok((m, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::one_hot;
    use crate::models::CvaeConfig;
    use crate::nn::Arch;

    fn small(recon: Recon, gamma: f64) -> CvaeConfig {
        CvaeConfig {
            arch: Arch::Conv,
            channels: vec![4, 8],
            latent: 3,
            beta: 1.5,
            decoder_batch_norm: true,
            adversarial: Some(CvaeAdversarial {
                d_channels: vec![4, 8],
                weight: 0.7,
                recon,
                gamma,
                ..CvaeAdversarial::default()
            }),
            ..CvaeConfig::default()
        }
    }

    fn noise(n: usize, k: usize, m: f32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * k) % 17) as f32 / 17.0 - 0.5) * m)
            .collect()
    }

    /// One backward pass of the step's total gives each network the gradient of its own loss,
    /// checked against separate backward passes of each loss on a copy of the model (gamma = 1
    /// there, where the gradient scaling is the identity): encoder and prior means <- beta KL +
    /// recon, decoder <- gamma recon + lambda GAN, discriminator <- its GAN loss.
    #[test]
    fn one_backward_routes_each_loss_to_its_network() {
        let d = Device::flex().autodiff();
        let x = Tensor::<4>::from_data(
            TensorData::new(
                noise(4 * 784, 7, 1.0).iter().map(|v| v + 0.5).collect(),
                [4, 1, 28, 28],
            ),
            &d,
        );
        let y = one_hot(&[0, 3, 3, 9], 10, &d);
        let eps = Tensor::<2>::from_data(TensorData::new(noise(12, 5, 2.0), [4, 3]), &d);
        let z_p = Tensor::<2>::from_data(TensorData::new(noise(12, 11, 2.0), [4, 3]), &d);
        let mut base = small(Recon::Features, 1.0).init(&d);
        // Non-zero class means, so their gradient path is exercised.
        base.prior_mean.weight = base.prior_mean.weight.clone().map(|w| w.add_scalar(0.05));
        // A parameter's gradient, of a rank-4 (conv) or, with `rank2`, a rank-2 (linear) weight.
        let grad = |g: &GradientsParams, id, rank2: bool| -> Vec<f32> {
            let t = if rank2 {
                g.get::<2>(id).map(|t| t.flatten::<1>(0, 1))
            } else {
                g.get::<4>(id).map(|t| t.flatten::<1>(0, 3))
            };
            t.expect("grad")
                .into_data()
                .try_into_vec::<f32>()
                .expect("f32")
        };
        let values = |g: &GradientsParams, id| grad(g, id, false);
        for recon in [Recon::Features, Recon::Pixels] {
            let gamma = 0.01;
            let copy = |gamma: f64| {
                let mut m = small(recon, gamma)
                    .init(&d)
                    .load_record(base.clone().into_record());
                let disc = m.discriminator.take().expect("adversarial");
                let a = m.config.adversarial.clone().expect("adversarial");
                (m, disc, a)
            };
            let grads_of = |m: &Cvae, disc: &ProjectionDiscriminator, loss: Tensor<1>| {
                let mut g = loss.backward();
                (
                    GradientsParams::from_module(&mut g, m),
                    GradientsParams::from_module(&mut g, disc),
                )
            };
            // The model for `gamma` and its terms on the test batch.
            let terms = |gamma: f64| {
                let (m, disc, a) = copy(gamma);
                let (x, y, eps, z_p) = (x.clone(), y.clone(), eps.clone(), z_p.clone());
                let t = cvae_gan_terms(&m, &disc, &a, x, y, eps, z_p);
                (m, disc, a, t)
            };
            // The step's single backward.
            let (m, disc, a, t) = terms(gamma);
            let (vae, dis) = grads_of(
                &m,
                &disc,
                t.vae_loss + t.adv.mul_scalar(a.weight) + t.d_loss,
            );
            // Each loss alone.
            let alone = |pick: &dyn Fn(CvaeGanTerms) -> Tensor<1>| {
                let (m, disc, _, t) = terms(1.0);
                grads_of(&m, &disc, pick(t))
            };
            let (enc_ref, _) = alone(&|t| t.kl.mul_scalar(1.5).mean() + t.recon.mean());
            let (dec_recon, _) = alone(&|t| t.recon.mean());
            let (dec_adv, _) = alone(&|t| t.adv);
            let (_, dis_ref) = alone(&|t| t.d_loss);
            let close = |a: &[f32], b: &[f32], what: &str| {
                assert_eq!(a.len(), b.len(), "{what}");
                let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
                for (x, y) in a.iter().zip(b) {
                    assert!(
                        (x - y).abs() <= 2e-3 * scale,
                        "{recon:?} {what}: {x} vs {y}"
                    );
                }
            };
            let e_id = m.encoder.conv.as_ref().expect("conv").convs[0].weight.id;
            close(&values(&vae, e_id), &values(&enc_ref, e_id), "encoder");
            let p_id = m.prior_mean.weight.id;
            close(
                &grad(&vae, p_id, true),
                &grad(&enc_ref, p_id, true),
                "prior means",
            );
            let d_id = m.decoder.conv.as_ref().expect("conv").deconvs[0].weight.id;
            let want: Vec<f32> = values(&dec_recon, d_id)
                .iter()
                .zip(values(&dec_adv, d_id))
                .map(|(r, g)| gamma as f32 * r + 0.7 * g)
                .collect();
            close(&values(&vae, d_id), &want, "decoder");
            let c_id = disc.body.convs[1].weight.id;
            close(
                &values(&dis, c_id),
                &values(&dis_ref, c_id),
                "discriminator",
            );
            let emb_id = disc.embed.as_ref().expect("projection").weight.id;
            close(
                &grad(&dis, emb_id, true),
                &grad(&dis_ref, emb_id, true),
                "class embedding",
            );
        }
    }

    /// A step puts the discriminator back, moves every network, and keeps the model usable.
    #[test]
    fn a_step_updates_all_three_networks() {
        let d = Device::flex().autodiff();
        let mut m = small(Recon::Features, 1e-2).init(&d);
        let before = (
            m.encoder.conv.as_ref().expect("conv").convs[0].weight.val(),
            m.decoder.conv.as_ref().expect("conv").deconvs[0]
                .weight
                .val(),
        );
        let disc = m.discriminator.take().expect("adversarial");
        let d_before = disc.body.convs[0].weight.val();
        let a = m.config.adversarial.clone().expect("adversarial");
        let x = Tensor::<4>::from_data(TensorData::new(noise(2 * 784, 3, 1.0), [2, 1, 28, 28]), &d)
            .add_scalar(0.5);
        let mut optim = crate::optim::adam([0.5, 0.999], 1e-8);
        let (m, s) = cvae_gan_step(
            m,
            disc,
            &a,
            &mut optim,
            x,
            one_hot(&[1, 2], 10, &d),
            Tensor::zeros([2, 3], &d),
            Tensor::ones([2, 3], &d),
            1e-3,
            At { epoch: 0, step: 0 },
        )
        .expect("finite");
        assert!(s.d_loss.is_finite() && s.g_loss.is_finite() && s.kl_sum >= 0.0);
        let moved = |a: Tensor<4>, b: Tensor<4>| -> f32 { (a - b).abs().max().into_scalar() };
        let disc = m.discriminator.as_ref().expect("put back");
        assert!(moved(d_before, disc.body.convs[0].weight.val()) > 0.0);
        assert!(
            moved(
                before.0,
                m.encoder.conv.as_ref().expect("conv").convs[0].weight.val()
            ) > 0.0
        );
        assert!(
            moved(
                before.1,
                m.decoder.conv.as_ref().expect("conv").deconvs[0]
                    .weight
                    .val()
            ) > 0.0
        );
    }
}
