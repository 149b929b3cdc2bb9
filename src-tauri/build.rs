//! The real configuration is `tauri.conf.json` at the top of the repository.

fn main() {
    println!("cargo:rerun-if-changed=../tauri.conf.json");
    println!("cargo:rerun-if-changed=../ui/dist");
    if std::env::var_os("CARGO_FEATURE_CUSTOM_PROTOCOL").is_some()
        && !std::path::Path::new("../ui/dist/index.html").exists()
    {
        panic!(
            "ui/dist is missing: the app embeds the built UI. Build it first with \
             `cargo xtask run` or `npm --prefix ui ci && npm --prefix ui run build` \
             (or build this crate with --no-default-features to load the Vite dev server)"
        );
    }
    let attributes =
        tauri_build::Attributes::new().app_manifest(tauri_build::AppManifest::new().commands(&[
            "overview",
            "host_save",
            "host_duplicate",
            "host_delete",
            "host_forget_password",
            "secrets_unlock",
            "secrets_lock",
            "folder_add",
            "folder_delete",
            "gateway_sign_in",
            "gateway_hosts",
            "gateway_sign_out",
            "gateway_save",
            "gateway_delete",
            "session_open",
            "session_keys",
            "session_paste",
            "session_resize",
            "session_scroll",
            "session_copy",
            "session_search",
            "session_close",
            "prompt_answer",
            "rdp_open",
            "rdp_input",
            "rdp_refresh",
            "rdp_resize",
            "rdp_clipboard",
            "rdp_sync_clipboard",
            "keys_list",
            "key_generate",
            "key_import",
            "key_delete",
            "key_copy_public",
        ]));
    if let Err(e) = tauri_build::try_build(attributes.config_path("../tauri.conf.json")) {
        panic!("tauri build step: {e:#}");
    }
}
