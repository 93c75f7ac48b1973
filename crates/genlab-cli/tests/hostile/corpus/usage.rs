//! Usage.

use super::super::*;

pub fn cases(cs: &mut Vec<Case>) {
    use Expect::*;
    for (name, a) in [
        ("no-command", vec![]),
        ("unknown-command", vec!["trian"]),
        ("train-no-family", vec!["train", "transformer"]),
        (
            "resume-with-a-family-flag",
            vec!["train", "--resume", "x", "--latent", "3"],
        ),
    ] {
        let mention = a.last().copied().unwrap_or("Usage");
        let expect = Usage;
        cs.push(case(
            &format!("usage-{name}"),
            expect,
            &[mention, "Usage"],
            move |_, _| args(&a),
        ));
    }
}
