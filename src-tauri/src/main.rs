//! The Portcullis desktop app: a Tauri window over the client core. The Rust side
//! is thin: state (client home, inventory, live sessions) and commands of a few
//! lines each; everything that matters is in `portcullis-client`.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod desktop;
mod error;
mod keys;
mod sessions;

use portcullis_client::home::ClientHome;

fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let home = match ClientHome::resolve(None) {
        Ok(home) => home,
        Err(e) => {
            eprintln!("portcullis-desktop: {e}");
            std::process::exit(2);
        }
    };
    let state = match tauri::async_runtime::block_on(commands::AppState::open(home)) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("portcullis-desktop: cannot open the inventory: {e}");
            std::process::exit(2);
        }
    };
    let result = tauri::Builder::default()
        .manage(state)
        .invoke_handler(tauri::generate_handler![
            commands::overview,
            commands::host_save,
            commands::host_duplicate,
            commands::host_delete,
            commands::host_forget_password,
            commands::secrets_unlock,
            commands::secrets_lock,
            commands::folder_add,
            commands::folder_delete,
            commands::gateway_sign_in,
            commands::gateway_hosts,
            commands::gateway_sign_out,
            commands::gateway_save,
            commands::gateway_delete,
            commands::session_open,
            commands::session_keys,
            commands::session_paste,
            commands::session_resize,
            commands::session_scroll,
            commands::session_copy,
            commands::session_search,
            commands::session_close,
            commands::prompt_answer,
            desktop::rdp_open,
            desktop::rdp_input,
            desktop::rdp_refresh,
            desktop::rdp_resize,
            desktop::rdp_clipboard,
            desktop::rdp_sync_clipboard,
            keys::keys_list,
            keys::key_generate,
            keys::key_import,
            keys::key_delete,
            keys::key_copy_public,
        ])
        .run(tauri::generate_context!("../tauri.conf.json"));
    if let Err(e) = result {
        eprintln!("portcullis-desktop: {e}");
        std::process::exit(1);
    }
}
