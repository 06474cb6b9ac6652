// Turns Scorewright's 48 kHz stereo stream into what an engine's audio callback asks for.
using System;

namespace Scorewright.Core
{
    /// <summary>Where stream audio comes from: the shared-memory ring or TCP audio messages.</summary>
    public interface IAudioSource
    {
        int Available { get; }
        int Read(float[] dest, int offset, int pairs);
    }

    /// <summary>A thread-safe FIFO of stereo pairs, filled from TCP `audio` messages.</summary>
    public sealed class AudioFifo : IAudioSource
    {
        readonly float[] data;
        readonly int capacity;
        long head, tail;   // pairs ever pushed / ever read
        public long Dropped { get; private set; }

        public AudioFifo(int capacityPairs = 48000)
        {
            capacity = capacityPairs;
            data = new float[capacityPairs * 2];
        }

        public int Available { get { lock (data) return (int)(head - tail); } }

        /// <summary>Append interleaved stereo; when full, the oldest audio goes (counted in Dropped).</summary>
        public void Push(float[] interleaved, int pairs)
        {
            lock (data)
            {
                int skip = Math.Max(0, pairs - capacity);
                for (int i = skip; i < pairs; i++)
                {
                    int at = (int)(head % capacity) * 2;
                    data[at] = interleaved[2 * i];
                    data[at + 1] = interleaved[2 * i + 1];
                    head++;
                }
                if (head - tail > capacity) { Dropped += head - tail - capacity; tail = head - capacity; }
            }
        }

        public int Read(float[] dest, int offset, int pairs)
        {
            lock (data)
            {
                int k = (int)Math.Min(pairs, head - tail);
                for (int i = 0; i < k; i++)
                {
                    int at = (int)((tail + i) % capacity) * 2;
                    dest[offset + 2 * i] = data[at];
                    dest[offset + 2 * i + 1] = data[at + 1];
                }
                tail += k;
                return k;
            }
        }

        public void Clear() { lock (data) tail = head; }
    }

    /// <summary>
    /// Fills engine audio buffers (any rate, any channel count) from a 48 kHz stereo source:
    /// linear-interpolation resampling with a continuous phase, playback that starts only once
    /// `TargetPairs` are waiting (the cushion that absorbs network and scheduling jitter), and a
    /// gentle rate correction (at most ±0.5 %) that holds that cushion when the sound card's
    /// clock runs slightly off the server's. Call Fill from the audio thread only.
    /// </summary>
    public sealed class StreamPlayer
    {
        public const int StreamRate = 48000;
        const double MaxDrift = 0.005, Smoothing = 0.01;

        public int TargetPairs;
        public long Underruns { get; private set; }
        public long PairsConsumed { get; private set; }
        public double SmoothedFill { get; private set; }

        float[] buf = new float[8192];
        int bufPairs;          // pairs held in buf
        double phase;          // read position in buf, in pairs
        bool primed;

        public StreamPlayer(int targetPairs = 1920 * 2) { TargetPairs = targetPairs; }

        /// <summary>Fill `output` (interleaved, `channels` per frame, at `outputRate`); returns the
        /// frames that came from the stream (the rest is silence).</summary>
        public int Fill(IAudioSource source, float[] output, int channels, int outputRate)
        {
            int frames = output.Length / channels;
            int available = source.Available;
            SmoothedFill += Smoothing * (available + bufPairs - SmoothedFill);
            if (!primed)
            {
                if (available < TargetPairs) { Array.Clear(output, 0, output.Length); return 0; }
                primed = true;
                SmoothedFill = available;
            }
            double correction = Math.Max(-MaxDrift, Math.Min(MaxDrift, 0.02 * (SmoothedFill - TargetPairs) / Math.Max(TargetPairs, 1)));
            double step = (double)StreamRate / outputRate * (1 + correction);
            for (int i = 0; i < frames; i++)
            {
                int idx = (int)phase;
                if (idx + 1 >= bufPairs)
                {
                    Compact();
                    idx = (int)phase;
                }
                if (idx + 1 >= bufPairs && !Refill(source, idx + 2))
                {
                    Array.Clear(output, i * channels, (frames - i) * channels);
                    Underruns++;
                    primed = false;
                    return i;
                }
                float frac = (float)(phase - idx);
                float l = buf[2 * idx] + (buf[2 * idx + 2] - buf[2 * idx]) * frac;
                float r = buf[2 * idx + 1] + (buf[2 * idx + 3] - buf[2 * idx + 1]) * frac;
                int o = i * channels;
                if (channels == 1) output[o] = 0.5f * (l + r);
                else
                {
                    output[o] = l;
                    output[o + 1] = r;
                    for (int c = 2; c < channels; c++) output[o + c] = 0f;
                }
                phase += step;
            }
            Compact();
            return frames;
        }

        /// <summary>Make buf hold at least `need` pairs; false when the source ran dry.</summary>
        bool Refill(IAudioSource source, int need)
        {
            int want = Math.Max(need - bufPairs, 480);
            if (buf.Length < (bufPairs + want) * 2) Array.Resize(ref buf, (bufPairs + want) * 2);
            int got = source.Read(buf, bufPairs * 2, Math.Min(want, source.Available));
            bufPairs += got;
            PairsConsumed += got;
            return bufPairs >= need;
        }

        /// <summary>Drop the pairs the phase has passed (keep the one interpolation starts from).</summary>
        void Compact()
        {
            int drop = Math.Min((int)phase, bufPairs);
            if (drop == 0) return;
            Buffer.BlockCopy(buf, drop * 8, buf, 0, (bufPairs - drop) * 8);
            bufPairs -= drop;
            phase -= drop;
        }
    }
}
