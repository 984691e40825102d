// Registers the kernel pack for the wasm backend (filled in by the engine work).
export function registerKernelPack(): void {}
