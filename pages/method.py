"""Method: the experiment in a few paragraphs and formulas."""

import streamlit as st

from app_widgets import through_the_app_navigation

through_the_app_navigation()
st.title("Method")
st.markdown(
    "**1. Mix.** One MNIST digit $m$ (28 x 28 grey, resized to 32 x 32 bilinearly and repeated "
    "to three channels) and one CIFAR-10 photo $c$ (32 x 32 RGB), both in [0, 1], are blended "
    "with a weight $\\alpha$; the seed uses $\\alpha = 0.5$, the plain average:"
)
st.latex(r"x = \alpha\, m + (1 - \alpha)\, c")
st.markdown(
    "**2. Train.** The autoencoder $f_\\theta$ learns to reproduce that single image: the mean "
    "squared error over its $N = 3 \\cdot 32 \\cdot 32$ values, minimised with Adam "
    "(learning rate $10^{-3}$) for 10,000 epochs of one step each:"
)
st.latex(
    r"\mathcal{L}(\theta) = \frac{1}{N} \sum_{i=1}^{N} \big(f_\theta(x)_i - x_i\big)^2, "
    r"\qquad \hat{x} = f_\theta(x)"
)
st.markdown(
    "**3. Un-mix.** Knowing one original, the other is solved from the mixing formula with the "
    "reconstruction in place of the mix. At $\\alpha = 0.5$ this is the seed's "
    "$2\\hat{x} - c$ and $2\\hat{x} - m$:"
)
st.latex(
    r"\hat{m} = \frac{\hat{x} - (1 - \alpha)\, c}{\alpha}, \qquad "
    r"\hat{c} = \frac{\hat{x} - \alpha\, m}{1 - \alpha}"
)
st.markdown(
    "**4. Score.** Each recovered image is compared with its original by the peak signal-to-noise "
    "ratio and the structural similarity (scikit-image, data range 1):"
)
st.latex(r"\mathrm{PSNR}(a, b) = 10 \log_{10} \frac{1}{\tfrac{1}{N}\sum_i (a_i - b_i)^2}")
st.latex(
    r"\mathrm{SSIM}(a, b) = \frac{(2\mu_a\mu_b + C_1)(2\sigma_{ab} + C_2)}"
    r"{(\mu_a^2 + \mu_b^2 + C_1)(\sigma_a^2 + \sigma_b^2 + C_2)}"
)
st.markdown(
    "SSIM is averaged over 7 x 7 windows and the three channels; it rewards matching local "
    "brightness, contrast and structure rather than raw pixel error."
)
st.subheader("Which SSIM?")
st.markdown(
    "The seed does not say which SSIM it reports, and two are in common use. The app's headline is "
    "scikit-image's default: the means and (co)variances above over a **7 x 7 uniform window**, with "
    "sample covariance ($\\tfrac{1}{n-1}$). Wang et al.'s original uses an **11-tap Gaussian window of "
    "$\\sigma = 1.5$** with population covariance ($\\tfrac{1}{n}$); scikit-image computes it with "
    "`gaussian_weights=True, sigma=1.5, use_sample_covariance=False`. The Gaussian weights the centre "
    "of each window more, so an error in a digit's thin strokes counts differently. On pair 3/3 after "
    "10,000 epochs (`ae-core run --mnist-index 3 --cifar-index 3`) MNIST scores 0.9823 and 0.9894, "
    "CIFAR-10 0.9932 and 0.9926: a gap as large as this run's from the seed's 0.9954 and 0.9988. The "
    "app reports both everywhere SSIM appears (badges' help, tables, JSON, the study's distributions)."
)
st.subheader("Why the seed's two PSNRs are the same number")
st.markdown("Both errors are the reconstruction's error, scaled:")
st.latex(r"\hat{m} - m = \frac{\hat{x} - x}{\alpha}, \qquad \hat{c} - c = \frac{\hat{x} - x}{1 - \alpha}")
st.markdown(
    "At $\\alpha = 0.5$ both are exactly $2(\\hat{x} - x)$, so both mean squared errors equal "
    "$4\\,\\mathrm{MSE}(\\hat{x}, x)$ and both PSNRs equal the mix's PSNR minus "
    "$10\\log_{10} 4 \\approx 6.02$ dB: 44.5539 dB for MNIST and for CIFAR-10 alike. This holds only "
    "because the un-mixed images are scored **as computed**; clamping them to [0, 1] first would "
    "change each error differently. SSIM differs between the two because it also depends on each "
    "original's own structure: the same error weighs less on a busy photo than on a digit that is "
    "mostly flat black. With $\\alpha \\ne 0.5$ the PSNRs part by $20\\log_{10}\\frac{1-\\alpha}"
    "{\\alpha}$ dB."
)
st.subheader("Autoencoder or memorizer?")
st.markdown(
    "The bottleneck holds 64 x 2 x 2 = 256 numbers for an input of 3,072 values, yet the network gives "
    "its one image back at over 40 dB. It has 0.21 M weights to do it with, and one image to fit: it can "
    "simply **memorize** it. What the same weights do with an image they never trained on tells the two "
    "apart, and that is what *Does it generalize?* on Mix & Train and the Batch study shows."
)
st.markdown(
    "Pair 3/0 at the seed's settings, then 64 pairs from the sample pack that share no image with it "
    "(`ae-core probe --mnist-index 3 --cifar-index 0 --unseen 64 --other-alpha 0.3`):"
)
st.dataframe(
    [
        {"Input": "the pair it trained on", "Un-mixed MNIST PSNR (dB)": "39.36"},
        {"Input": "64 unseen pairs: median (range)", "Un-mixed MNIST PSNR (dB)": "6.96 (4.33 to 9.05)"},
        {"Input": "the same pair mixed at α 0.3", "Un-mixed MNIST PSNR (dB)": "9.18"},
    ],
    hide_index=True,
)
st.markdown(
    "A 32 dB gap. Whatever it is given, the network draws the mix it trained on (see the images under "
    "*Does it generalize?*): each original alone comes back at 12.0 and 11.7 dB from itself, about as far "
    "as the trained mix is from either original (12.98 dB). So the seed's table measures how well 0.21 M "
    "weights store one picture, not how well an autoencoder separates a digit from a photo; un-mixing works "
    "only because the other original is given exactly."
)
st.subheader("How small can the bottleneck be?")
st.markdown(
    "If the network memorizes, the bottleneck should hardly matter: the picture can live in the decoder's "
    "weights, with the latent only a fixed input to them. Three pairs at the seed's settings with every "
    "offered latent size (`ae-core sweep --pairs 3 --over latent --values 4 8 16 32 64 128`, 10,000 epochs, "
    "all on the fast engine):"
)
st.dataframe(
    [
        {"Latent channels": "4", "Bottleneck numbers": 16, "Parameters": 22_727, "Median PSNR (dB)": 44.55},
        {"Latent channels": "8", "Bottleneck numbers": 32, "Parameters": 35_275, "Median PSNR (dB)": 46.25},
        {"Latent channels": "16", "Bottleneck numbers": 64, "Parameters": 60_371, "Median PSNR (dB)": 43.26},
        {"Latent channels": "32", "Bottleneck numbers": 128, "Parameters": 110_563, "Median PSNR (dB)": 40.30},
        {
            "Latent channels": "64 (the seed's)",
            "Bottleneck numbers": 256,
            "Parameters": 210_947,
            "Median PSNR (dB)": 40.65,
        },
        {"Latent channels": "128", "Bottleneck numbers": 512, "Parameters": 411_715, "Median PSNR (dB)": 40.86},
    ],
    hide_index=True,
    column_config={"Parameters": st.column_config.NumberColumn(format="%d")},
)
st.markdown(
    "Down to 4 channels, 16 numbers for 3,072 values, the median is no worse than at the seed's size "
    "(44.55 dB against 40.65; three pairs, standard deviations 1.3 to 2.9 dB), and no offered size falls "
    "short of the seed's table for want of "
    "bottleneck. What does limit it is the weights: at half width with 4 latent channels (9,063 parameters, "
    "`ae-core study --pairs 3 --latent-channels 4 --width 0.5`) the same three pairs reach a median of "
    "35.26 dB. The un-mixing's quality is set by how much picture the weights can store."
)
