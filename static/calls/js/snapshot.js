// Still frames from a <video>: the original design's photo booth.
// Works on the element it is given and a detached canvas/link; never touches the page layout.

const SNAPSHOT_TYPE = "image/png";
// Chromium resolves a blob: download asynchronously; revoking at once can cancel it.
const REVOKE_DELAY_MS = 10_000;

function pad2(n) {
  return String(n).padStart(2, "0");
}

/** "YYYYmmdd-HHMMSS" in local time, for file names. */
export function timestampForFilename(date = new Date()) {
  return (
    `${date.getFullYear()}${pad2(date.getMonth() + 1)}${pad2(date.getDate())}-` +
    `${pad2(date.getHours())}${pad2(date.getMinutes())}${pad2(date.getSeconds())}`
  );
}

/**
 * A PNG of the video's current frame at its intrinsic size (not its CSS size, and not mirrored:
 * the preview's mirror is only a display choice).
 * @param {HTMLVideoElement} videoElement
 * @returns {Promise<Blob>}
 */
export function captureFrame(videoElement) {
  return new Promise((resolve, reject) => {
    const width = videoElement ? videoElement.videoWidth : 0;
    const height = videoElement ? videoElement.videoHeight : 0;
    if (!width || !height || videoElement.readyState < HTMLMediaElement.HAVE_CURRENT_DATA) {
      reject(new Error("No video frame to capture yet: wait until the camera preview is showing."));
      return;
    }
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext("2d");
    if (!context) {
      reject(new Error("This browser cannot draw the video frame (no 2D canvas)."));
      return;
    }
    context.drawImage(videoElement, 0, 0, width, height);
    canvas.toBlob((blob) => {
      if (blob) resolve(blob);
      else reject(new Error("The video frame could not be encoded as PNG."));
    }, SNAPSHOT_TYPE);
  });
}

/**
 * Capture the current frame and hand it to the browser as a download named
 * "<prefix>-YYYYmmdd-HHMMSS.png".
 * @returns {Promise<void>}
 */
export async function downloadSnapshot(videoElement, filenamePrefix = "peerline-snapshot") {
  const blob = await captureFrame(videoElement);
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = `${filenamePrefix}-${timestampForFilename()}.png`;
  link.rel = "noopener";
  link.style.display = "none";
  document.body.append(link);
  try {
    link.click();
  } finally {
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), REVOKE_DELAY_MS);
  }
}
