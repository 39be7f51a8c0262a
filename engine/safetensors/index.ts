export { SafetensorsFile, MAX_HEADER_BYTES, numel, type TensorInfo } from './reader.ts';
export { writeSafetensors, writeFully, f32Entry, type TensorEntry } from './writer.ts';
