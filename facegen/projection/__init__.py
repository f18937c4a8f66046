"""Projection: a photo's face as a latent of any model.

    perceptual.py  PerceptualDistance: the LPIPS network (NVIDIA's vgg16.pt or --perceptual PATH), prepared
    projector.py   ProjectionSettings, Projection (one step at a time), project(), render_latent()
    outputs.py     the files of a projection folder; load_projected_face(), render_projected_face()
    job.py         project_photo() (detect, align, project, write) and ProjectionJob (the same on a thread)
"""
