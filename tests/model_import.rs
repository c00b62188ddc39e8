//! PyTorch checkpoint import (every key layout, hostile files) and export round trips.

mod common;

use burn::tensor::Device;
use common::{assert_close, fixture, read_safetensors, values};
use cucn::model::weights::{
    export_safetensors, import_pytorch, import_safetensors, load_model, save_model,
};
use cucn::model::{CucnConfig, ModelError};

/// Backbone features of a narrow network: f32 convolutions in another summation order.
const FEATURE_REL_TOL: f64 = 1e-4;

/// The narrow (4-8-16-32) ResNet-18 without CBAM that the `.pth` fixtures hold.
fn narrow_backbone() -> CucnConfig {
    CucnConfig::new()
        .with_widths([4, 8, 16, 32])
        .with_input_size(32)
        .with_cbam(false)
}

#[test]
fn every_key_layout_imports_and_gives_pytorch_features() {
    let fx = read_safetensors("backbone.safetensors");
    let device = Device::default();
    for layout in ["plain", "nested", "model_state_dict", "module"] {
        let path = fixture(&format!("backbone_{layout}.pth"));
        let model = narrow_backbone().init(&device).unwrap();
        let (model, report) =
            import_pytorch(model, &path).unwrap_or_else(|e| panic!("{layout}: {e}"));
        assert_eq!(
            report.ignored_fc,
            vec!["fc.bias".to_string(), "fc.weight".to_string()],
            "{layout}"
        );
        assert!(
            report.unused.is_empty(),
            "{layout}: unused {:?}",
            report.unused
        );
        assert!(
            report
                .missing
                .iter()
                .all(|k| k.starts_with("mu.") || k.starts_with("logvar.") || k.starts_with("fc.")),
            "{layout}: only the new head may be missing, got {:?}",
            report.missing
        );
        // 1 stem conv + 1 stem BN (4 tensors) + 8 blocks x (2 convs + 2 BNs x 4) + 3 projections x 5.
        assert_eq!(report.loaded, 1 + 4 + 8 * (2 + 8) + 3 * 5, "{layout}");
        let features = model.features(fx["x"].tensor::<4>(&device));
        let err = assert_close(
            layout,
            &values(features),
            &fx["features"].values,
            FEATURE_REL_TOL,
            0.0,
        );
        println!("{layout}: features max relative error {err:.2e}");
    }
}

#[test]
fn shape_mismatch_names_the_key_and_both_shapes() {
    let device = Device::default();
    let model = narrow_backbone()
        .with_widths([8, 16, 32, 64])
        .init(&device)
        .unwrap();
    let err = import_pytorch(model, &fixture("backbone_plain.pth")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ModelError::ShapeMismatch { .. }), "{msg}");
    assert!(
        msg.contains("backbone_plain.pth")
            && msg.contains("[8, 3, 7, 7]")
            && msg.contains("[4, 3, 7, 7]"),
        "{msg}"
    );
}

fn import_error(path: &std::path::Path) -> String {
    let model = narrow_backbone().init(&Device::default()).unwrap();
    let err = import_pytorch(model, path).expect_err("hostile file must be refused");
    let msg = err.to_string();
    assert!(
        msg.contains(&path.file_name().unwrap().to_string_lossy().to_string()),
        "names the file: {msg}"
    );
    msg
}

#[test]
fn hostile_checkpoints_are_clear_errors() {
    let huge = import_error(&fixture("crafted_huge.pth"));
    assert!(huge.contains("cannot read checkpoint"), "{huge}");
    let opcode = import_error(&fixture("crafted_opcode.pth"));
    assert!(opcode.contains("cannot read checkpoint"), "{opcode}");
    let int = import_error(&fixture("crafted_int.pth"));
    assert!(
        int.to_lowercase().contains("dtype") || int.contains("conv1.weight"),
        "{int}"
    );

    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(fixture("backbone_plain.pth")).unwrap();
    let truncated = dir.path().join("truncated.pth");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    assert!(import_error(&truncated).contains("cannot read checkpoint"));
    let empty = dir.path().join("empty.pth");
    std::fs::write(&empty, b"").unwrap();
    assert!(import_error(&empty).contains("cannot read checkpoint"));
    let text = dir.path().join("notes.pth");
    std::fs::write(&text, b"this is not a checkpoint\n").unwrap();
    assert!(import_error(&text).contains("cannot read checkpoint"));
}

#[test]
fn safetensors_export_round_trips() {
    let device = Device::default();
    let config = CucnConfig::new()
        .with_widths([8, 16, 32, 64])
        .with_input_size(32);
    let model = config.init(&device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    export_safetensors(&model, &config, &path).unwrap();

    // torchvision-style names and PyTorch layout in the file.
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let names = st.names();
    assert!(names.contains(&"layer2.0.downsample.0.weight"));
    assert!(names.contains(&"layer1.0.cbam.spatial.bn.running_var"));
    assert_eq!(st.tensor("fc.weight").unwrap().shape(), &[7, 64]);

    let fresh = config.init(&device).unwrap();
    let (loaded, report) = import_safetensors(fresh, &path).unwrap();
    assert!(report.missing.is_empty() && report.unused.is_empty());
    let x = burn::tensor::Tensor::<4>::random(
        [2, 3, 32, 32],
        burn::tensor::Distribution::Default,
        &device,
    );
    let a = values(model.predict(x.clone()).logits);
    let b = values(loaded.predict(x).logits);
    assert_eq!(a, b, "exported and re-imported model give identical logits");
}

#[test]
fn cucn_model_file_round_trips_and_foreign_files_are_refused() {
    let device = Device::default();
    let config = CucnConfig::new()
        .with_widths([8, 16, 32, 64])
        .with_input_size(32)
        .with_num_classes(8);
    let model = config.init(&device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.bpk");
    save_model(&model, &config, &path).unwrap();
    let (loaded, loaded_config) = load_model(&path, &device).unwrap();
    assert_eq!(loaded_config, config);
    let x = burn::tensor::Tensor::<4>::random(
        [2, 3, 32, 32],
        burn::tensor::Distribution::Default,
        &device,
    );
    assert_eq!(
        values(model.predict(x.clone()).probabilities),
        values(loaded.predict(x).probabilities)
    );

    let err = load_model(&fixture("backbone_plain.pth"), &device).unwrap_err();
    assert!(matches!(err, ModelError::NotAModel { .. }), "{err}");
    assert!(err.to_string().contains("backbone_plain.pth"));
}
