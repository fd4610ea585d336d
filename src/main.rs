fn main() {
    std::process::exit(jobman::run(std::env::args_os()));
}
