/**
 * The full machine description `framecost doctor` shows: the engine's view
 * (Node, CPU, backends and their GEMM peaks) plus the ffmpeg that media uses.
 * It lives in media, the first stage that sees both, so the report can embed it.
 */
import { type DescribeOptions, describeMachine, type MachineDescription } from "../engine/machine.ts";
import { type FfmpegStatus, type FindFfmpegOptions, ffmpegStatus } from "./ffmpeg.ts";

export interface DoctorData extends MachineDescription {
  ffmpeg: FfmpegStatus;
}

export interface DoctorOptions extends DescribeOptions {
  ffmpeg?: FindFfmpegOptions;
}

export async function doctorData({ ffmpeg, ...describe }: DoctorOptions = {}): Promise<DoctorData> {
  const ffmpegInfo = await ffmpegStatus(ffmpeg); // first: a bad --ffmpeg fails before the slow calibration
  return { ...(await describeMachine(describe)), ffmpeg: ffmpegInfo };
}
