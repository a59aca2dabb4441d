// Package inference turns a photo into a diagnosis: it decodes and checks the photo, runs the one
// shared ONNX Runtime session of a CropShield model (see the model contract in DESIGN.md), and
// renders the Grad-CAM heat-map of the top class as a JPEG overlay of the photo.
//
// The package knows nothing about chats, users or storage. A process loads one Model with Load and
// shares it between goroutines: Model.Analyze and Model.Predict are safe for concurrent use.
package inference
