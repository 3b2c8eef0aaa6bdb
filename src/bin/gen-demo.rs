//! Writes the bundled demo dataset `assets/demo-world.json` from the project's own world
//! generator: `gen-demo [PATH]`. Re-run it whenever the generator changes (a unit test checks
//! the file is current).

use registry_cleaner::world::{bundle, generate};

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo-world.json").into());
    let world = generate(bundle::BUNDLED_SEED, bundle::size_for(bundle::BUNDLED_TAGS));
    let b = bundle::bundle(&world);
    let json = serde_json::to_vec(&b)?;
    std::fs::write(&path, &json)?;
    eprintln!("{path}: {} tags, {} bytes", world.tags.len(), json.len());
    Ok(())
}
