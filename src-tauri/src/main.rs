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

/// WebKitGTK's DMA-BUF renderer (its default since 2.42) costs the app about
/// 76 MiB of memory (PSS, measured by `cargo xtask bench app`: 289 → 214 MiB)
/// and buys nothing a list of hosts, terminals and an RDP canvas need; WebKit
/// then composites as it did before 2.42. It is also the usual cause of blank
/// WebKitGTK windows on NVIDIA drivers. `PORTCULLIS_WEBKIT_DMABUF=1` keeps it;
/// a `WEBKIT_DISABLE_DMABUF_RENDERER` already set is left as it is.
///
/// Without that renderer, on X11, the app draws nothing with GDK's OpenGL (it
/// has no GL widget; the window tests, RDP canvas and screenshots included,
/// pass with it off), yet GDK loads the GL driver at start to pick visuals:
/// with Mesa that is LLVM, about 150 ms of a 0.97 s start (`cargo xtask bench
/// app`, 3 runs each: 962–974 ms, and 783–921 ms with `GDK_GL=disable`). So on
/// X11 the app sets `GDK_GL=disable` too, unless `GDK_GL` is set. Under
/// Wayland WebKit may draw through GDK's GL, and that is not tested here, so
/// it is left alone there.
#[cfg(target_os = "linux")]
fn choose_webkit_renderer() {
    const WEBKIT: &str = "WEBKIT_DISABLE_DMABUF_RENDERER";
    let keep = std::env::var_os("PORTCULLIS_WEBKIT_DMABUF").is_some_and(|v| v == "1");
    if keep {
        return;
    }
    let x11 = std::env::var_os("WAYLAND_DISPLAY").is_none_or(|v| v.is_empty())
        || std::env::var_os("GDK_BACKEND").is_some_and(|v| v == "x11");
    let mut settings = vec![(WEBKIT, "1")];
    if x11 && std::env::var_os(WEBKIT).is_none_or(|v| v != "0") {
        settings.push(("GDK_GL", "disable"));
    }
    for (name, value) in settings {
        if std::env::var_os(name).is_none() {
            // SAFETY: the first thing main does, before any thread of ours, GTK's or
            // WebKit's exists, so nothing reads the environment concurrently.
            #[allow(unsafe_code)]
            unsafe {
                std::env::set_var(name, value);
            }
        }
    }
}

fn main() {
    #[cfg(target_os = "linux")]
    choose_webkit_renderer();
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
