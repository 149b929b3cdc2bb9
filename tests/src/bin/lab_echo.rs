//! A TCP echo server for the lab: every byte received is sent back; EOF from the
//! peer closes the connection once everything is echoed. Runs inside the private
//! namespace, so tunnels carry a known number of bytes each way.
//!
//! With `--sink` it discards what it reads and, at EOF, answers with the byte
//! count as 8 big-endian bytes: the far end of the throughput benchmark.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

fn echo(mut stream: TcpStream) {
    let mut buffer = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if stream.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn sink(mut stream: TcpStream) {
    let mut buffer = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(_) => return,
        }
    }
    let _ = stream.write_all(&total.to_be_bytes());
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let address = args.first().expect("usage: lab-echo ADDR:PORT [--sink]");
    let discard = args.iter().any(|a| a == "--sink");
    let listener = TcpListener::bind(address).expect("lab-echo: cannot listen");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || if discard { sink(stream) } else { echo(stream) });
    }
}
