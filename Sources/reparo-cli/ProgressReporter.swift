import Foundation
import ReparoCore

/// Progress on a terminal: one self-overwriting line on stderr (epoch, step, loss,
/// accuracy, throughput, ETA). When stderr is not a TTY (a log file, CI), one line per
/// finished epoch if `epochLines`, else nothing. Silent with --quiet.
final class ProgressReporter {
    let enabled: Bool
    let epochLog: Bool
    let label: String
    private var lastDraw = Date.distantPast

    init(quiet: Bool, label: String, epochLines: Bool = false) {
        let terminal = isatty(STDERR_FILENO) == 1
        self.enabled = !quiet && terminal
        self.epochLog = !quiet && !terminal && epochLines
        self.label = label
    }

    func update(_ progress: FitProgress) {
        if epochLog, progress.isEpochEnd {
            let line = String(format: "%@ epoch %d/%d  loss %.4f  acc %.1f%%  %.0f img/s  %.0f s, about %.0f s left\n",
                              label, progress.epoch, progress.epochs, progress.epochLoss, progress.epochAccuracy * 100,
                              progress.samplesPerSecond, progress.elapsedSeconds, progress.remainingSeconds)
            FileHandle.standardError.write(Data(line.utf8))
        }
        guard enabled else { return }
        let now = Date()
        guard progress.isEpochEnd || now.timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = now
        let line = String(format: "\r%@ epoch %d/%d  step %d/%d  loss %.4f  acc %.1f%%  %.0f img/s  ETA %.0fs   ",
                          label, progress.epoch, progress.epochs, progress.batchInEpoch, progress.batchesPerEpoch,
                          progress.epochLoss, progress.epochAccuracy * 100, progress.samplesPerSecond,
                          progress.remainingSeconds)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func note(_ text: String) {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K\(text)\n".utf8))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
