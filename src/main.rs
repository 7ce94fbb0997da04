// mimalloc: the item stream allocates a few small buffers per item on one thread and frees them
// on another; glibc's malloc spends a quarter of a 1,000,000-item listing on that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(oxiborg::cli::main());
}
