//! Placeholder for the Tauri desktop app. It exists so that the workspace has its
//! final shape from the start; the desktop-app issue replaces it with the real app.

fn main() {
    eprintln!(
        "portcullis-desktop: the desktop app is not built yet; use the `portcullis` CLI and `portcullis-gateway` for now"
    );
    std::process::exit(2);
}
