"""Projection: a photo's face as a latent of any model.

    perceptual.py  PerceptualDistance: the LPIPS network (NVIDIA's vgg16.pt or --perceptual PATH), prepared
    projector.py   ProjectionSettings, Projection (one step at a time), project() (the result carries the face)
    outputs.py     the files of a projection folder; load_projected_face(), face_from_projected_w()
    job.py         project_photo() (detect, align, project, write) and ProjectionJob (the same on a thread)
"""
