//! The generative families by name: each is a `genlab train` subcommand, and
//! `genlab compare --families` lists them. One definition, so the names and default presets
//! cannot drift apart.

/// A generative model family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GenerativeFamily {
    /// Plain autoencoder.
    Ae,
    /// Variational autoencoder.
    Vae,
    /// DCGAN (generator + discriminator).
    #[value(alias = "gan")]
    Dcgan,
    /// VAE-GAN: a VAE whose decoder is also a GAN generator.
    VaeGan,
    /// Conditional VAE (labelled datasets).
    Cvae,
    /// Conditional DCGAN (labelled datasets).
    Cgan,
}

impl GenerativeFamily {
    /// The model kind, as a run's `config.toml` (`[model] kind`) and `compare`'s table spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ae => "ae",
            Self::Vae => "vae",
            Self::Dcgan => "dcgan",
            Self::VaeGan => "vae-gan",
            Self::Cvae => "cvae",
            Self::Cgan => "cgan",
        }
    }

    /// The built-in preset trained when none is named: the family's MNIST recipe, with the
    /// convolutional body when `conv` is set (autoencoder and VAE; the GANs are convolutional
    /// either way).
    pub fn default_preset(self, conv: bool) -> &'static str {
        match (self, conv) {
            (Self::Ae, false) => "mnist-ae",
            (Self::Ae, true) => "mnist-conv-ae",
            (Self::Vae, false) => "mnist-vae",
            (Self::Vae, true) => "mnist-conv-vae",
            (Self::Dcgan, _) => "mnist-dcgan",
            (Self::VaeGan, _) => "mnist-vae-gan",
            (Self::Cvae, false) => "mnist-cvae",
            (Self::Cvae, true) => "mnist-conv-cvae",
            (Self::Cgan, _) => "mnist-cgan",
        }
    }
}
